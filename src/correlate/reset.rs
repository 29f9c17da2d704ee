//! Rules for an upstream that closed or reset the connection before answering (R1-R6, R13,
//! R14, R15, R16, R17, R20): which FPM worker exit, timeout, restart or rejection explains it.
//!
//! Input: the failure line and the FPM index. Output: a `Verdict`. The rules are an ordered
//! table (`RESET_RULES`, one function each, the first that concludes wins), read in the
//! order a reader checks them; their time windows are named constants. Invariants: a child
//! exit explains at most one line at full confidence: which line claims which exit is a step
//! of its own (`claim_exits`, run once over every reset and broken-pipe line in time order
//! before any verdict), so a verdict never depends on the order lines are judged in; a
//! verdict by elimination (`allowed_clients` without FPM's word) needs its cause's pattern.

use super::evidence::{ReqKey, STOPS};
use super::join::nearest;
use super::rules::{is_unix, lower, verdict, Rules, KILL_WINDOW};
use super::{Evid, Verdict};
use crate::model::{Cause, CauseClass, Confidence, ErrorEvent, FpmKind, Phase, Ts};
use std::collections::HashMap;

/// FPM logs `execution timed out` for a script up to this long before nginx sees the reset,
/// and at most this long after (stamps are whole seconds).
const TIMEOUT_BEFORE: Ts = 3_000;
const TIMEOUT_AFTER: Ts = 1_000;
/// A stop or reload (`Terminating`, `Reloading`, `Finishing`) this long before the reset, or
/// just after it, cut the request.
const STOP_BEFORE: Ts = 3_000;
const STOP_AFTER: Ts = 1_000;

/// What the rules of one reset line see.
pub(super) struct Reset<'e> {
    li: usize,
    e: &'e ErrorEvent,
    ev: Vec<Evid>,
    /// Mid-response (`while reading upstream`): the client got a truncated body.
    cut: &'static str,
}

type ResetRule = fn(&Rules, &Reset) -> Option<Verdict>;

/// The reset rules in order (module doc).
const RESET_RULES: &[(&str, ResetRule)] = &[
    ("an HTTP backend: no log of it to read", http_backend),
    ("R15: FPM was down, failing to start", fpm_failed_to_start),
    ("R13: FPM said it rejected nginx's address", connection_disallowed),
    ("R6: FPM killed this request's script", this_script_killed),
    ("R1-R5, R16, R17: the child exit claimed for this line", child_exit),
    ("R14: FPM stopped or reloaded around it", fpm_restart),
    ("R6: FPM killed a script at this moment", a_script_killed),
    ("no FPM log covers the moment", no_fpm_log),
    ("R13 by elimination: FPM on TCP rejecting nginx", rejected_by_elimination),
];

fn with(mut ev: Vec<Evid>, extra: Evid) -> Vec<Evid> {
    ev.push(extra);
    ev
}

fn http_backend(_: &Rules, r: &Reset) -> Option<Verdict> {
    r.e.upstream().filter(|u| u.starts_with("http")).map(|_| {
        verdict(CauseClass::C7, Cause::WorkerCrash, Confidence::Low, r.ev.clone(), format!(
            "the HTTP backend closed or reset the connection before answering{}; upcause reads no backend log, so why is not known", r.cut))
    })
}

fn fastcgi(e: &ErrorEvent) -> bool {
    e.upstream().is_none_or(|u| u.starts_with("fastcgi://"))
}

/// FPM was down because it failed to start: whatever closed the connection was not FPM (a
/// process holding its address, the reason it could not bind).
fn fpm_failed_to_start(s: &Rules, r: &Reset) -> Option<Verdict> {
    if !fastcgi(r.e) {
        return None;
    }
    s.lifecycle_state(r.e.ts).and_then(|i| s.start_failure(i, r.e.class, &r.ev))
}

fn connection_disallowed(s: &Rules, r: &Reset) -> Option<Verdict> {
    let t = r.e.ts;
    let i = s.fpm.kind_in(FpmKind::ConnectionDisallowed, t - KILL_WINDOW, t + KILL_WINDOW).next()?;
    Some(verdict(
        CauseClass::C13,
        Cause::AllowedClients,
        Confidence::High,
        with(r.ev.clone(), s.ev_fpm(i)),
        "FPM dropped the connection: nginx's address is not in listen.allowed_clients",
    ))
}

/// FPM's `execution timed out` for this request (method and query), and the same child's
/// exit (claimed by this line in `claim_exits`).
fn this_script_timeout(s: &Rules, e: &ErrorEvent) -> Option<usize> {
    let k = e.request().and_then(ReqKey::parse)?;
    let first = s.fpm.for_request(&k, FpmKind::ExecutionTimedOut, e.ts - TIMEOUT_BEFORE, e.ts + TIMEOUT_AFTER).next();
    first
}

/// The exit of child `pid` around `t` (a signal or a non-zero code).
fn same_child_exit(s: &Rules, pid: Option<u32>, t: Ts) -> Option<usize> {
    [FpmKind::ChildSignal, FpmKind::ChildExitCode]
        .into_iter()
        .filter_map(|k| {
            s.fpm.pid_in(k, pid, t - KILL_WINDOW, t + KILL_WINDOW).find(|&x| s.fpm.events[x].exit_code != Some(0))
        })
        .min()
}

fn this_script_killed(s: &Rules, r: &Reset) -> Option<Verdict> {
    let i = this_script_timeout(s, r.e)?;
    let mut ev = with(r.ev.clone(), s.ev_fpm(i));
    if let Some(&(x, _)) = s.exit_claims.get(&r.li) {
        ev.push(s.ev_fpm(x));
    }
    let el = s.fpm.events[i].elapsed_s.map(|x| format!(" after {x:.1} s")).unwrap_or_default();
    Some(verdict(
        CauseClass::C6,
        Cause::FpmRequestTerminated,
        Confidence::High,
        ev,
        format!("FPM killed the script{el} (request_terminate_timeout){}", r.cut),
    ))
}

/// A stop or reload of FPM around `t`.
fn stop_around(s: &Rules, t: Ts) -> Option<usize> {
    s.fpm.prev_of(t + STOP_AFTER, STOP_BEFORE + STOP_AFTER, STOPS)
}

fn child_exit(s: &Rules, r: &Reset) -> Option<Verdict> {
    let &(x, used) = s.exit_claims.get(&r.li)?;
    let ev = with(r.ev.clone(), s.ev_fpm(x));
    let xe = &s.fpm.events[x];
    let (sig, code, pid, xts) = (xe.signal, xe.exit_code, xe.child_pid, xe.ts);
    let conf = |c: Confidence| if used { lower(c) } else { c };
    let life = stop_around(s, r.e.ts);
    let cut = r.cut;
    if code == Some(124) {
        return Some(verdict(
            CauseClass::C9,
            Cause::HardTimeout,
            conf(Confidence::High),
            ev,
            format!("the worker exited with code 124: PHP's hard timeout after max_execution_time{cut}"),
        ));
    }
    match sig {
        Some(11 | 7 | 6 | 4 | 8) => Some(verdict(
            CauseClass::C7,
            Cause::WorkerCrash,
            conf(Confidence::High),
            ev,
            format!("the worker died on signal {}{cut}", sig.unwrap_or(0)),
        )),
        Some(15) => {
            if let Some(to) = s.fpm.pid_in(FpmKind::ExecutionTimedOut, pid, xts - TIMEOUT_BEFORE, xts).next() {
                return Some(verdict(
                    CauseClass::C6,
                    Cause::FpmRequestTerminated,
                    conf(Confidence::High),
                    with(ev, s.ev_fpm(to)),
                    format!("FPM killed the worker (request_terminate_timeout){cut}"),
                ));
            }
            if let Some(l) = life {
                return Some(verdict(
                    CauseClass::C14,
                    Cause::FpmRestartCut,
                    conf(Confidence::High),
                    with(ev, s.ev_fpm(l)),
                    "FPM stopped or reloaded with this request in flight",
                ));
            }
            Some(verdict(
                CauseClass::C8,
                Cause::WorkerKilled,
                conf(Confidence::Medium),
                ev,
                format!("the worker got SIGTERM from outside FPM (no timeout, no reload){cut}"),
            ))
        }
        Some(9) if life.is_none() => Some(verdict(
            CauseClass::C8,
            Cause::WorkerKilled,
            conf(Confidence::Medium),
            ev,
            format!("the worker was SIGKILLed with no timeout and no reload: the OOM killer or an external kill{cut}"),
        )),
        _ if life.is_none() => Some(verdict(
            CauseClass::C7,
            Cause::WorkerCrash,
            conf(Confidence::Medium),
            ev,
            format!("the worker exited abnormally ({}){cut}", xe.message),
        )),
        // An exit during a stop or reload: the restart rule says why.
        _ => None,
    }
}

fn fpm_restart(s: &Rules, r: &Reset) -> Option<Verdict> {
    let l = stop_around(s, r.e.ts)?;
    let mut ev = r.ev.clone();
    if let Some(&(x, _)) = s.exit_claims.get(&r.li) {
        ev.push(s.ev_fpm(x));
    }
    ev.push(s.ev_fpm(l));
    Some(verdict(
        CauseClass::C14,
        Cause::FpmRestartCut,
        Confidence::High,
        ev,
        "FPM stopped or reloaded with this request in flight",
    ))
}

fn a_script_killed(s: &Rules, r: &Reset) -> Option<Verdict> {
    let t = r.e.ts;
    let i = s.fpm.kind_in(FpmKind::ExecutionTimedOut, t - TIMEOUT_BEFORE, t + TIMEOUT_AFTER).next()?;
    Some(verdict(
        CauseClass::C6,
        Cause::FpmRequestTerminated,
        Confidence::Medium,
        with(r.ev.clone(), s.ev_fpm(i)),
        "FPM killed a script at this moment (request_terminate_timeout)",
    ))
}

fn no_fpm_log(s: &Rules, r: &Reset) -> Option<Verdict> {
    (!s.fpm.covers(r.e.ts)).then(|| {
        verdict(
            CauseClass::Unexplained,
            Cause::Unexplained,
            Confidence::Low,
            r.ev.clone(),
            format!("the upstream closed the connection before answering{}, and no FPM log covers this time", r.cut),
        )
    })
}

/// A worker that dies logs its exit; a connection FPM refuses to serve does not (unless
/// catch_workers_output relays the child's message). But listen.allowed_clients is read when
/// FPM starts and rejects every connection from nginx's address until it starts again: a peer
/// that answered a request with no start of FPM between that answer and this reset was
/// accepting nginx (a sporadic reset among successes is something else, and says so). Its
/// answers only after the reset count too: a sporadic reset in the first seconds of the logs,
/// before the peer's first answer, is not a rejection either.
fn rejected_by_elimination(s: &Rules, r: &Reset) -> Option<Verdict> {
    let (e, t) = (r.e, r.e.ts);
    let peer = e.peer();
    let fastcgi_tcp = e.upstream().is_some_and(|u| u.starts_with("fastcgi://")) && !is_unix(peer);
    if !fastcgi_tcp || e.phase == Phase::ReadingUpstream {
        return None;
    }
    // The peer's answers span [first, last]: one of them falls between the starts of FPM
    // around this reset (the same configuration) unless a start separates them all from it.
    let accepted = peer.and_then(|p| s.peers.get(p)).is_some_and(|h| match (h.first_ok, h.last_ok) {
        (Some(first), _) if t < first => !s.fpm.started_in(t, first),
        (_, Some(last)) if last < t => !s.fpm.started_in(last, t),
        (first, last) => first.is_some() && last.is_some(),
    });
    Some(if accepted {
        verdict(CauseClass::Unexplained, Cause::Unexplained, Confidence::Low, r.ev.clone(), format!(
            "FPM on TCP reset the connection and logged no child exit, timeout or restart; {} answered requests with no start of FPM between them and this reset, so it is not listen.allowed_clients (which rejects every connection from nginx until FPM starts again): a sporadic reset the logs do not explain",
            peer.unwrap_or("the peer")))
    } else {
        verdict(CauseClass::C13, Cause::AllowedClients, Confidence::Medium, r.ev.clone(),
            "FPM on TCP dropped the connection and logged no child exit, timeout or restart, and the peer answered no request between FPM's starts around it: listen.allowed_clients rejects nginx's address (FPM logs the rejection only with catch_workers_output = yes)")
    })
}

impl Rules<'_> {
    /// Which line claims which child exit, before any verdict (module doc). A line whose
    /// script FPM reported as timed out takes that child's own exit first; then, in time
    /// order, every reset or broken-pipe line that the rules before `child_exit` do not
    /// settle takes the nearest exit within `KILL_WINDOW` no line has taken, or, when all
    /// there are taken, the nearest one (`used`: the verdict's confidence is lowered).
    pub(super) fn claim_exits(&self) -> HashMap<usize, (usize, bool)> {
        let mut claims = HashMap::new();
        let mut free: super::join::Ordered = self.fpm.exits.iter().map(|&i| (self.fpm.events[i].ts, i)).collect();
        let candidates: Vec<usize> = (0..self.errors.len())
            .filter(|&li| matches!(self.errors[li].class, CauseClass::C7 | CauseClass::C27) && self.errors[li].failure)
            .collect();
        let mut rest = Vec::new();
        for &li in &candidates {
            let e = &self.errors[li];
            if e.class == CauseClass::C7 {
                let r = Reset { li, e, ev: vec![], cut: "" };
                if http_backend(self, &r).is_some()
                    || fpm_failed_to_start(self, &r).is_some()
                    || connection_disallowed(self, &r).is_some()
                {
                    continue;
                }
                if let Some(i) = this_script_timeout(self, e) {
                    let ev = &self.fpm.events[i];
                    if let Some(x) = same_child_exit(self, ev.child_pid, e.ts) {
                        free.remove(&(self.fpm.events[x].ts, x));
                        claims.insert(li, (x, false));
                    }
                    continue;
                }
            }
            rest.push(li);
        }
        for li in rest {
            let t = self.errors[li].ts;
            let (from, to) = (t - KILL_WINDOW, t + KILL_WINDOW);
            if let Some(i) = nearest(&free, t, from, to, |_| true) {
                free.remove(&(self.fpm.events[i].ts, i));
                claims.insert(li, (i, false));
            } else if let Some(i) = self.nearest_exit(t) {
                claims.insert(li, (i, true));
            }
        }
        claims
    }

    /// The nearest child exit to `t` within `KILL_WINDOW`, taken or not (the first of equal
    /// stamps).
    fn nearest_exit(&self, t: Ts) -> Option<usize> {
        let (from, to) = (t - KILL_WINDOW, t + KILL_WINDOW);
        let exits = &self.fpm.exits;
        let events = self.fpm.events;
        let a = exits.partition_point(|&i| events[i].ts < t);
        let after = exits.get(a).copied().filter(|&i| events[i].ts <= to);
        let before = a.checked_sub(1).map(|b| exits[b]).filter(|&i| events[i].ts >= from).map(|b| {
            let ts = events[b].ts;
            exits[exits.partition_point(|&i| events[i].ts < ts)]
        });
        [after, before].into_iter().flatten().min_by_key(|&i| ((events[i].ts - t).abs(), i))
    }

    /// The upstream closed or reset the connection: the first rule of `RESET_RULES` that
    /// concludes, else `unexplained` saying what the FPM log lacks.
    pub(super) fn reset(&self, li: usize, e: &ErrorEvent, ev: Vec<Evid>) -> Verdict {
        let cut =
            if e.phase == Phase::ReadingUpstream { " (mid-response: the client got a truncated body)" } else { "" };
        let r = Reset { li, e, ev, cut };
        for (_, rule) in RESET_RULES {
            if let Some(v) = rule(self, &r) {
                return v;
            }
        }
        verdict(CauseClass::Unexplained, Cause::Unexplained, Confidence::Low, r.ev, format!(
            "the upstream closed the connection before answering{cut}; the FPM log shows no child exit, timeout or restart then"))
    }

    pub(super) fn broken_pipe(&self, li: usize, _e: &ErrorEvent, mut ev: Vec<Evid>) -> Verdict {
        if let Some(&(x, used)) = self.exit_claims.get(&li) {
            ev.push(self.ev_fpm(x));
            let sig = self.fpm.events[x].signal;
            let (c, cause) = if sig == Some(9) {
                (CauseClass::C8, Cause::WorkerKilled)
            } else {
                (CauseClass::C7, Cause::WorkerCrash)
            };
            let conf = if used { Confidence::Low } else { Confidence::Medium };
            return verdict(c, cause, conf, ev, "the worker died while nginx was sending the request");
        }
        verdict(
            CauseClass::C27,
            Cause::UpstreamBrokenPipe,
            Confidence::Medium,
            ev,
            "the backend closed while nginx was still sending the request: a body limit or a keepalive race",
        )
    }
}

#[cfg(test)]
mod tests {
    use super::RESET_RULES;

    #[test]
    fn the_rules_are_in_the_documented_order() {
        let names: Vec<&str> = RESET_RULES.iter().map(|r| r.0).collect();
        // Conclusive evidence first, elimination last.
        assert!(names.first().unwrap().starts_with("an HTTP backend"));
        assert!(names.last().unwrap().contains("by elimination"));
        let exit = names.iter().position(|n| n.contains("child exit")).unwrap();
        let restart = names.iter().position(|n| n.contains("R14")).unwrap();
        assert!(exit < restart, "{names:?}");
    }
}
