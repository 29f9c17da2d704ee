//! Request-level verdicts (a failing request takes the verdict of its nginx line, refined by
//! what only the request knows: status 499/500, `$request_time`) and R18 (`no live
//! upstreams` takes the dominant per-peer cause before it).
//!
//! Input: joined lines, line verdicts, the FPM index. Output: a `Verdict` per request.
//! Invariant: a request no log explains is `unexplained`, with the reason in `detail`.

use super::evidence::ReqKey;
use super::rules::{lower, verdict, Rules, MAX_CHILDREN_LOOKBACK};
use super::{Evid, Verdict};
use crate::model::{Cause, CauseClass, Confidence, FpmKind, RequestEvent, Ts};

impl Rules<'_> {
    /// R18: `no live upstreams` takes the dominant per-peer cause of the same vhost in the
    /// same nginx error log (rotation set) just before it (or of the previous such line).
    pub fn no_live_pass(&self, verdicts: &mut [Option<Verdict>], same_log: &dyn Fn(u32, u32) -> bool) {
        const BACK: Ts = 60_000;
        for li in 0..self.errors.len() {
            let e = &self.errors[li];
            if e.class != CauseClass::C22 || !e.failure {
                continue;
            }
            let vhost = e.host.as_deref().or(e.server.as_deref());
            let from = self.errors.partition_point(|x| x.ts < e.ts - BACK);
            let mut counts: Vec<((CauseClass, Cause), usize, Vec<Evid>)> = Vec::new();
            let mut prev_c22: Option<Verdict> = None;
            for (j, (x, v)) in self.errors.iter().zip(verdicts.iter()).enumerate().take(li).skip(from) {
                // Same vhost of the same nginx (its error log), so another server's failures
                // under the same name do not count.
                if !x.failure || x.host.as_deref().or(x.server.as_deref()) != vhost || !same_log(x.source, e.source) {
                    continue;
                }
                let Some(v) = v else { continue };
                if x.class == CauseClass::C22 {
                    if v.class != CauseClass::C22 {
                        prev_c22 = Some(v.clone());
                    }
                    continue;
                }
                if matches!(v.class, CauseClass::Unclassified | CauseClass::Unexplained) {
                    continue;
                }
                match counts.iter_mut().find(|c| c.0 == (v.class, v.cause)) {
                    Some(c) => {
                        c.1 += 1;
                        if c.2.len() < 5 {
                            c.2.push(self.ev_err(j));
                        }
                    }
                    None => counts.push(((v.class, v.cause), 1, vec![self.ev_err(j)])),
                }
            }
            let own = self.ev_err(li);
            let v = if let Some(best) = counts.into_iter().max_by_key(|c| (c.1, std::cmp::Reverse(c.0 .0.rank()))) {
                let mut ev = vec![own];
                ev.extend(best.2);
                verdict(best.0 .0, best.0 .1, Confidence::Medium, ev, format!(
                    "no live upstreams: every server of the group had failed; the dominant per-peer cause in the {} s before ({} lines)",
                    BACK / 1000, best.1))
            } else if let Some(mut p) = prev_c22 {
                p.evidence.insert(0, own);
                p.confidence = lower(p.confidence);
                p
            } else {
                verdict(CauseClass::C22, Cause::NoLiveUpstreams, Confidence::Low, vec![own],
                    "no live upstreams and no per-peer error line before it: the error_log level (warn lines) may hide them")
            };
            verdicts[li] = Some(v);
        }
    }

    /// R7 against R8: a request FPM logged as slow may still have timed out because it first
    /// waited for a free worker. If the script started well after the request (by more than
    /// the one-second stamp error of both logs) while the pool was at pm.max_children, the
    /// wait is the cause.
    fn queued_first(&self, r: &RequestEvent, key: Option<&ReqKey>) -> Option<Verdict> {
        let k = key?;
        let start = r.start_ts();
        let slow = self.fpm.for_request(k, FpmKind::ExecutingTooSlow).find(|&i| {
            let ts = self.fpm.events[i].ts;
            ts >= start - 2_000 && ts <= r.ts + 5_000
        })?;
        let e = &self.fpm.events[slow];
        let script_start = e.ts - (e.elapsed_s? * 1000.0) as Ts;
        let wait = script_start - start;
        let mc = self.max_children_before(r.ts).filter(|&i| self.fpm.events[i].ts >= start - MAX_CHILDREN_LOOKBACK)?;
        if wait < 1_500 {
            return None;
        }
        let ev = vec![self.ev_fpm(mc), self.ev_fpm(slow)];
        Some(verdict(CauseClass::C4, Cause::FpmPoolExhausted, Confidence::Medium, ev, format!(
            "the request waited about {:.1} s for a free worker (pool at pm.max_children) before its script started, then timed out",
            wait as f64 / 1000.0)))
    }

    /// The verdict for a failing request, from its joined lines and the other logs.
    pub fn request_verdict(
        &self,
        r: &RequestEvent,
        lines: &[usize],
        line_verdicts: &[Option<Verdict>],
        loose: bool,
    ) -> (&'static str, Verdict) {
        let start = r.start_ts();
        let key = match (&r.method, &r.uri) {
            (Some(m), Some(u)) => ReqKey::parse(&format!("{m} {}", super::join::unescape(u))),
            _ => None,
        };
        let mut ev: Vec<Evid> = Vec::new();
        let mut failure_line = None;
        let mut app_line = None;
        for &li in lines {
            ev.push(self.ev_err(li));
            if self.errors[li].failure {
                failure_line = Some(li);
            } else {
                app_line = Some(li);
            }
        }
        if r.status == 499 {
            if let Some(k) = &key {
                if let Some(i) = self.fpm.for_request(k, FpmKind::ExecutingTooSlow).find(|&i| {
                    let ts = self.fpm.events[i].ts;
                    ts >= start - 5_000 && ts <= r.ts + 5_000
                }) {
                    ev.push(self.ev_fpm(i));
                    return (
                        "client_closed",
                        verdict(
                            CauseClass::C5,
                            Cause::SlowBackend,
                            Confidence::High,
                            ev,
                            "the client gave up while FPM was still running the script (logged as executing too slow)",
                        ),
                    );
                }
            }
            if failure_line.is_none() {
                if let Some(i) =
                    self.max_children_before(r.ts).filter(|&i| self.fpm.events[i].ts >= start - MAX_CHILDREN_LOOKBACK)
                {
                    ev.push(self.ev_fpm(i));
                    return (
                        "client_closed",
                        verdict(
                            CauseClass::C4,
                            Cause::FpmPoolExhausted,
                            Confidence::Medium,
                            ev,
                            "the client gave up while the FPM pool was at pm.max_children",
                        ),
                    );
                }
                let d = match app_line {
                    Some(_) => format!("the client closed the connection after {:.1} s", r.request_time.unwrap_or(0.0)),
                    None => format!(
                        "the client closed the connection; nginx logs that at info level, which the error_log level (lowest seen: {}) may hide",
                        self.cover.lowest_level.map(|l| l.as_str()).unwrap_or("none")
                    ),
                };
                let conf = if app_line.is_some() { Confidence::Medium } else { Confidence::Low };
                let prox = app_line.map(|l| self.errors[l].signature).unwrap_or("none");
                return (prox, verdict(CauseClass::C28, Cause::ClientAbort, conf, ev, d));
            }
        }
        if let Some(li) = failure_line {
            let mut v = line_verdicts[li]
                .clone()
                .unwrap_or_else(|| verdict(self.errors[li].class, self.errors[li].cause, Confidence::Low, vec![], ""));
            for x in ev {
                if !v.evidence.contains(&x) {
                    v.evidence.push(x);
                }
            }
            if v.cause == Cause::SlowBackend {
                if let Some(mut q) = self.queued_first(r, key.as_ref()) {
                    for e in &v.evidence {
                        if !q.evidence.contains(e) {
                            q.evidence.push(*e);
                        }
                    }
                    v = q;
                }
            }
            if loose {
                v.confidence = lower(v.confidence);
                v.detail = format!("{} (joined by client and time only)", v.detail);
            }
            return (self.errors[li].signature, v);
        }
        if let Some(li) = app_line {
            let e = &self.errors[li];
            let d = match e.class {
                CauseClass::C10 => "the script hit memory_limit; PHP answered 500 itself",
                CauseClass::C11 => "the script died with a PHP fatal error; PHP answered 500 itself",
                CauseClass::C12 => "FPM could not find or open the script",
                _ => "",
            };
            return (
                e.signature,
                verdict(
                    e.class,
                    e.class.default_cause(),
                    if loose { Confidence::Medium } else { Confidence::High },
                    ev,
                    d,
                ),
            );
        }
        // No nginx line: what the other logs and the request itself say.
        if r.status == 500 {
            let near = self.fpm.window(start - 1_000, r.ts + 2_000).find(|&i| {
                let e = &self.fpm.events[i];
                matches!(e.kind, FpmKind::PhpMessage | FpmKind::SaidIntoStderr) && e.message.contains("Fatal error")
            });
            if let Some(i) = near {
                let mem = self.fpm.events[i].message.contains("Allowed memory size");
                ev.push(self.ev_fpm(i));
                let (c, cause) =
                    if mem { (CauseClass::C10, Cause::PhpMemoryLimit) } else { (CauseClass::C11, Cause::PhpFatal) };
                return (
                    "none",
                    verdict(c, cause, Confidence::Medium, ev, "FPM logged a PHP fatal error for a worker at this time"),
                );
            }
        }
        let reason = if !self.cover.any() {
            "no nginx error log among the inputs".to_string()
        } else if !self.cover.covers(r.ts) {
            "no nginx error log covers this time".to_string()
        } else if r.attempts.last().copied() == Some(r.status) && r.upstream_response_time.is_some_and(|t| t > 0.0) {
            format!(
                "the upstream answered {} itself (nginx logs nothing for that){}",
                r.status,
                if r.status == 500 { ": the application failed without a log nginx or FPM could see" } else { "" }
            )
        } else if r.upstream_addr.is_none() && r.status == 503 {
            "nginx answered 503 without contacting an upstream (limit_req, limit_conn or `return 503`?)".to_string()
        } else {
            format!(
                "the error log covers this time but has no line for this request; the error_log level (lowest seen: {}) may hide it",
                self.cover.lowest_level.map(|l| l.as_str()).unwrap_or("none")
            )
        };
        ("none", verdict(CauseClass::Unexplained, Cause::Unexplained, Confidence::Low, ev, reason))
    }
}
