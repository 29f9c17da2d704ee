//! Rules for an upstream that closed or reset the connection before answering (R1-R5,
//! R16, R17, R20): which FPM worker exit, timeout, restart or rejection explains it.
//!
//! Input: the failure line and the FPM index. Output: a `Verdict`. Invariant: a child exit
//! explains at most one line at full confidence (`take_exit` claims it).

use super::evidence::{ReqKey, STOPS};
use super::join::nearest;
use super::rules::{is_unix, lower, verdict, Rules, KILL_WINDOW};
use super::{Evid, Verdict};
use crate::model::{Cause, CauseClass, Confidence, ErrorEvent, FpmKind, Ts};

impl Rules<'_> {
    /// The nearest child exit to `t` (within `KILL_WINDOW`), preferring one no other
    /// failure has claimed; claims it. `(exit, already claimed)`.
    pub(super) fn take_exit(&mut self, t: Ts) -> Option<(usize, bool)> {
        let (from, to) = (t - KILL_WINDOW, t + KILL_WINDOW);
        if let Some(i) = nearest(&self.free_exits, t, from, to, |_| true) {
            self.free_exits.remove(&(self.fpm.events[i].ts, i));
            return Some((i, false));
        }
        let exits = &self.fpm.exits;
        let events = self.fpm.events;
        // All exits in the window are claimed: the nearest of them.
        let a = exits.partition_point(|&i| events[i].ts < t);
        let after = exits.get(a).copied().filter(|&i| events[i].ts <= to);
        let before = a.checked_sub(1).map(|b| exits[b]).filter(|&i| events[i].ts >= from);
        let before = before.map(|b| {
            // The first of equal stamps (lowest index) among those before `t`.
            let ts = events[b].ts;
            exits[exits.partition_point(|&i| events[i].ts < ts)]
        });
        let d = |i: usize| ((events[i].ts - t).abs(), i);
        [after, before].into_iter().flatten().min_by_key(|&i| d(i)).map(|i| (i, true))
    }

    /// The upstream closed or reset the connection (R1-R5, R16, R20).
    pub(super) fn reset(&mut self, e: &ErrorEvent, mut ev: Vec<Evid>) -> Verdict {
        let t = e.ts;
        let body = e.phase == crate::model::Phase::ReadingUpstream;
        let cut = if body { " (mid-response: the client got a truncated body)" } else { "" };
        if e.upstream.as_deref().is_some_and(|u| u.starts_with("http")) {
            return verdict(CauseClass::C7, Cause::WorkerCrash, Confidence::Low, ev, format!(
                "the HTTP backend closed or reset the connection before answering{cut}; upcause reads no backend log, so why is not known"));
        }
        // FPM was down because it failed to start: whatever closed the connection was not FPM
        // (a process holding its address, the reason it could not bind).
        let fastcgi = e.upstream.as_deref().is_none_or(|u| u.starts_with("fastcgi://"));
        if let Some(v) = self.lifecycle_state(t).filter(|_| fastcgi).and_then(|i| self.start_failure(i, e.class, &ev)) {
            return v;
        }
        if let Some(i) = self.fpm.kind_in(FpmKind::ConnectionDisallowed, t - KILL_WINDOW, t + KILL_WINDOW).next() {
            ev.push(self.ev_fpm(i));
            return verdict(
                CauseClass::C13,
                Cause::AllowedClients,
                Confidence::High,
                ev,
                "FPM dropped the connection: nginx's address is not in listen.allowed_clients",
            );
        }
        if let Some(k) = e.request.as_deref().and_then(ReqKey::parse) {
            let hit = self.fpm.for_request(&k, FpmKind::ExecutionTimedOut, t - 3_000, t + 1_000).next();
            if let Some(i) = hit {
                ev.push(self.ev_fpm(i));
                let pid = self.fpm.events[i].child_pid;
                let (from, to) = (t - KILL_WINDOW, t + KILL_WINDOW);
                let same_pid = [FpmKind::ChildSignal, FpmKind::ChildExitCode]
                    .into_iter()
                    .filter_map(|k| {
                        self.fpm.pid_in(k, pid, from, to).find(|&x| self.fpm.events[x].exit_code != Some(0))
                    })
                    .min();
                if let Some(x) = same_pid {
                    self.free_exits.remove(&(self.fpm.events[x].ts, x));
                    ev.push(self.ev_fpm(x));
                }
                let el = self.fpm.events[i].elapsed_s.map(|s| format!(" after {s:.1} s")).unwrap_or_default();
                return verdict(
                    CauseClass::C6,
                    Cause::FpmRequestTerminated,
                    Confidence::High,
                    ev,
                    format!("FPM killed the script{el} (request_terminate_timeout){cut}"),
                );
            }
        }
        let life = self.fpm.prev_of(t + 1_000, 4_000, STOPS);
        if let Some((x, used)) = self.take_exit(t) {
            ev.push(self.ev_fpm(x));
            let xe = &self.fpm.events[x];
            let (sig, code, pid, xts) = (xe.signal, xe.exit_code, xe.child_pid, xe.ts);
            let conf = |c: Confidence| if used { lower(c) } else { c };
            if code == Some(124) {
                return verdict(
                    CauseClass::C9,
                    Cause::HardTimeout,
                    conf(Confidence::High),
                    ev,
                    format!("the worker exited with code 124: PHP's hard timeout after max_execution_time{cut}"),
                );
            }
            match sig {
                Some(11 | 7 | 6 | 4 | 8) => {
                    return verdict(
                        CauseClass::C7,
                        Cause::WorkerCrash,
                        conf(Confidence::High),
                        ev,
                        format!("the worker died on signal {}{cut}", sig.unwrap_or(0)),
                    );
                }
                Some(15) => {
                    if let Some(to) = self.fpm.pid_in(FpmKind::ExecutionTimedOut, pid, xts - 3_000, xts).next() {
                        ev.push(self.ev_fpm(to));
                        return verdict(
                            CauseClass::C6,
                            Cause::FpmRequestTerminated,
                            conf(Confidence::High),
                            ev,
                            format!("FPM killed the worker (request_terminate_timeout){cut}"),
                        );
                    }
                    if let Some(l) = life {
                        ev.push(self.ev_fpm(l));
                        return verdict(
                            CauseClass::C14,
                            Cause::FpmRestartCut,
                            conf(Confidence::High),
                            ev,
                            "FPM stopped or reloaded with this request in flight",
                        );
                    }
                    return verdict(
                        CauseClass::C8,
                        Cause::WorkerKilled,
                        conf(Confidence::Medium),
                        ev,
                        format!("the worker got SIGTERM from outside FPM (no timeout, no reload){cut}"),
                    );
                }
                Some(9) if life.is_none() => {
                    return verdict(CauseClass::C8, Cause::WorkerKilled, conf(Confidence::Medium), ev,
                        format!("the worker was SIGKILLed with no timeout and no reload: the OOM killer or an external kill{cut}"));
                }
                _ if life.is_none() => {
                    return verdict(
                        CauseClass::C7,
                        Cause::WorkerCrash,
                        conf(Confidence::Medium),
                        ev,
                        format!("the worker exited abnormally ({}){cut}", xe.message),
                    );
                }
                _ => {}
            }
        }
        if let Some(l) = life {
            ev.push(self.ev_fpm(l));
            return verdict(
                CauseClass::C14,
                Cause::FpmRestartCut,
                Confidence::High,
                ev,
                "FPM stopped or reloaded with this request in flight",
            );
        }
        if let Some(i) = self.fpm.kind_in(FpmKind::ExecutionTimedOut, t - 3_000, t + 1_000).next() {
            ev.push(self.ev_fpm(i));
            return verdict(
                CauseClass::C6,
                Cause::FpmRequestTerminated,
                Confidence::Medium,
                ev,
                "FPM killed a script at this moment (request_terminate_timeout)",
            );
        }
        if !self.fpm.covers(t) {
            return verdict(
                CauseClass::Unexplained,
                Cause::Unexplained,
                Confidence::Low,
                ev,
                format!("the upstream closed the connection before answering{cut}, and no FPM log covers this time"),
            );
        }
        let peer = e.peer();
        let fastcgi_tcp = e.upstream.as_deref().is_some_and(|u| u.starts_with("fastcgi://")) && !is_unix(peer);
        if fastcgi_tcp && !body {
            // A worker that dies logs its exit; a connection FPM refuses to serve does not
            // (unless catch_workers_output relays the child's message).
            return verdict(CauseClass::C13, Cause::AllowedClients, Confidence::Medium, ev,
                "FPM on TCP dropped the connection and logged no child exit, timeout or restart: listen.allowed_clients rejects nginx's address (FPM logs the rejection only with catch_workers_output = yes)");
        }
        verdict(CauseClass::Unexplained, Cause::Unexplained, Confidence::Low, ev,
            format!("the upstream closed the connection before answering{cut}; the FPM log shows no child exit, timeout or restart then"))
    }

    pub(super) fn broken_pipe(&mut self, e: &ErrorEvent, mut ev: Vec<Evid>) -> Verdict {
        if let Some((x, used)) = self.take_exit(e.ts) {
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
