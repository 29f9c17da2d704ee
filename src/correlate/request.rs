//! Request-level verdicts (a failing request takes the verdict of its nginx line, refined by
//! what only the request knows: status 499/500, `$request_time`) and R18 (`no live
//! upstreams` takes the dominant per-peer cause before it).
//!
//! Input: joined lines, line verdicts, the FPM index. Output: a `Verdict` per request.
//! Invariant: a request no log explains is `unexplained`, with the reason in `detail`.

use super::evidence::ReqKey;
use super::rules::{lower, verdict, Rules, MAX_CHILDREN_LOOKBACK};

/// A client abort is put on a saturated pool only if FPM reported pm.max_children this long
/// before the request started, or during it.
const ABORT_SATURATION_MS: Ts = 60_000;
/// FPM logs `executing too slow` for a request from before it started (stamps of whole
/// seconds) to a few seconds after nginx logged its end.
const SLOW_BEFORE: Ts = 5_000;
const SLOW_AFTER: Ts = 5_000;
/// A queued request: FPM's slow-log line of its script from just before it started.
const QUEUED_SLOW_BEFORE: Ts = 2_000;
/// PHP's fatal error for a 500: logged from a second before the request started to two
/// seconds after its end.
const FATAL_BEFORE: Ts = 1_000;
const FATAL_AFTER: Ts = 2_000;
use super::{Evid, Verdict};
use crate::model::{Cause, CauseClass, Confidence, FpmKind, RequestEvent, Ts};

/// The first 160 characters of a message, for a `detail`.
fn short(m: &str) -> String {
    match m.char_indices().nth(160) {
        Some((i, _)) => format!("{}...", &m[..i]),
        None => m.to_string(),
    }
}

/// Why nginx refused a request itself, from its `limiting ...` line: the zone and, for
/// `limit_req`, the excess over the rate.
fn refusal_detail(status: u16, cause: Cause, message: &str) -> String {
    let zone = message.split_once("by zone \"").and_then(|(_, r)| r.split('"').next()).unwrap_or("?");
    match cause {
        Cause::ConnLimited => format!("nginx refused it itself ({status}): limit_conn zone \"{zone}\" was at its connection limit; no upstream was contacted"),
        _ => {
            let excess = message.split_once("excess: ").map(|(_, r)| r.split([' ', ',']).next().unwrap_or("")).unwrap_or("?");
            format!("nginx refused it itself ({status}): limit_req zone \"{zone}\" was over its rate and burst (excess {excess}); no upstream was contacted")
        }
    }
}

impl Rules<'_> {
    /// R18: `no live upstreams` takes the dominant per-peer cause of the same vhost in the
    /// same nginx error log (rotation set) just before it (or of the previous such line).
    ///
    /// One sweep in time order: per (vhost, log) the failure lines of the last `BACK` ms are
    /// kept in a window, counted per cause as they enter and leave, so the pass is linear in
    /// the lines however many `no live upstreams` lines there are.
    pub fn no_live_pass(&self, verdicts: &mut [Option<Verdict>], log_of: &dyn Fn(u32) -> u32) {
        const BACK: Ts = 60_000;
        type Key<'e> = (Option<&'e str>, u32);
        #[derive(Default)]
        struct Window {
            /// Failure lines in the window, in order.
            lines: std::collections::VecDeque<usize>,
            /// Per cause of the counted lines, their indices in order (front = earliest).
            causes: std::collections::HashMap<(CauseClass, Cause), std::collections::VecDeque<usize>>,
            /// `no live upstreams` lines in the window that took another line's cause.
            resolved_c22: std::collections::VecDeque<usize>,
        }
        let counted = |v: &Verdict| !matches!(v.class, CauseClass::Unclassified | CauseClass::Unexplained);
        let mut windows: std::collections::HashMap<Key, Window> = std::collections::HashMap::new();
        for li in 0..self.errors.len() {
            let e = &self.errors[li];
            if !e.failure {
                continue;
            }
            let key: Key = (e.host().or(e.server()), log_of(e.source));
            let w = windows.entry(key).or_default();
            // Lines older than the window leave it.
            while let Some(&j) = w.lines.front() {
                if self.errors[j].ts >= e.ts - BACK {
                    break;
                }
                w.lines.pop_front();
                if self.errors[j].class == CauseClass::C22 {
                    if w.resolved_c22.front() == Some(&j) {
                        w.resolved_c22.pop_front();
                    }
                } else if let Some(v) = verdicts[j].as_ref().filter(|v| counted(v)) {
                    let k = (v.class, v.cause);
                    if let Some(q) = w.causes.get_mut(&k) {
                        q.pop_front();
                        if q.is_empty() {
                            w.causes.remove(&k);
                        }
                    }
                }
            }
            if e.class == CauseClass::C22 {
                let own = self.ev_err(li);
                // Most lines, then the lowest class; on a tie, the cause seen last.
                let best =
                    w.causes.iter().max_by_key(|(k, q)| (q.len(), std::cmp::Reverse(k.0.rank()), q.front().copied()));
                let v = if let Some((k, q)) = best {
                    let mut ev = vec![own];
                    ev.extend(q.iter().take(5).map(|&j| self.ev_err(j)));
                    verdict(k.0, k.1, Confidence::Medium, ev, format!(
                        "no live upstreams: every server of the group had failed; the dominant per-peer cause in the {} s before ({} lines)",
                        BACK / 1000, q.len()))
                } else if let Some(mut p) = w.resolved_c22.back().and_then(|&j| verdicts[j].clone()) {
                    p.evidence.insert(0, own);
                    p.confidence = lower(p.confidence);
                    p
                } else {
                    verdict(CauseClass::C22, Cause::NoLiveUpstreams, Confidence::Low, vec![own],
                        "no live upstreams and no per-peer error line before it: the error_log level (warn lines) may hide them")
                };
                if v.class != CauseClass::C22 {
                    w.resolved_c22.push_back(li);
                }
                verdicts[li] = Some(v);
            } else if let Some(v) = verdicts[li].as_ref().filter(|v| counted(v)) {
                w.causes.entry((v.class, v.cause)).or_default().push_back(li);
            }
            w.lines.push_back(li);
        }
    }

    /// R7 against R8: a request FPM logged as slow may still have timed out because it first
    /// waited for a free worker. If the script started well after the request (by more than
    /// the one-second stamp error of both logs) while the pool was at pm.max_children, the
    /// wait is the cause.
    fn queued_first(&self, r: &RequestEvent, key: Option<&ReqKey>) -> Option<Verdict> {
        let k = key?;
        let start = r.start_ts();
        let slow =
            self.fpm.for_request(k, FpmKind::ExecutingTooSlow, start - QUEUED_SLOW_BEFORE, r.ts + SLOW_AFTER).next()?;
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
        let key = match (r.method(), r.uri()) {
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
                if let Some(i) =
                    self.fpm.for_request(k, FpmKind::ExecutingTooSlow, start - SLOW_BEFORE, r.ts + SLOW_AFTER).next()
                {
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
                // The pool reached pm.max_children while this request waited (a warning from the
                // minute before it to just after it; a warning from minutes earlier says nothing
                // about one impatient client in a busy week).
                if let Some(i) =
                    self.max_children_before(r.ts).filter(|&i| self.fpm.events[i].ts >= start - ABORT_SATURATION_MS)
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
                v.detail = format!("{} (joined by client and time only)", v.detail).into();
            }
            return (self.errors[li].signature, v);
        }
        if let Some(li) = app_line {
            let e = &self.errors[li];
            let d = match e.class {
                CauseClass::C10 => "the script hit memory_limit; PHP answered 500 itself".to_string(),
                CauseClass::C11 => "the script died with a PHP fatal error; PHP answered 500 itself".to_string(),
                CauseClass::C12 => "FPM could not find or open the script".to_string(),
                CauseClass::RL => refusal_detail(r.status, e.cause, e.message()),
                _ => String::new(),
            };
            return (
                e.signature,
                verdict(e.class, e.cause, if loose { Confidence::Medium } else { Confidence::High }, ev, d),
            );
        }
        // No nginx line: what the other logs and the request itself say.
        if r.status == 500 {
            // A PHP fatal error FPM relayed or PHP wrote to its own error log (where nginx never
            // sees it): the one naming this request's script first, then the nearest in time.
            let path = r.uri().map(|u| u.split(['?', '#']).next().unwrap_or(u)).unwrap_or("");
            let names_script = |i: usize| {
                let s = self.fpm.events[i].script.as_deref().unwrap_or("");
                path.len() > 1 && !s.is_empty() && s.ends_with(path)
            };
            let near = self
                .fpm
                .fatal_in(start - FATAL_BEFORE, r.ts + FATAL_AFTER)
                .min_by_key(|&i| (!names_script(i), (self.fpm.events[i].ts - r.ts).abs(), i));
            if let Some(i) = near {
                let e = &self.fpm.events[i];
                let mem = e.message.contains("Allowed memory size");
                ev.push(self.ev_fpm(i));
                let (c, cause) =
                    if mem { (CauseClass::C10, Cause::PhpMemoryLimit) } else { (CauseClass::C11, Cause::PhpFatal) };
                let (conf, d) = if names_script(i) {
                    (
                        Confidence::High,
                        format!(
                            "PHP logged a fatal error in this request's script {path} at {}: {}",
                            self.t(e.ts),
                            short(&e.message)
                        ),
                    )
                } else {
                    (
                        Confidence::Medium,
                        format!(
                            "PHP logged a fatal error at this time (for another script, or one it does not name): {}",
                            short(&e.message)
                        ),
                    )
                };
                return ("none", verdict(c, cause, conf, ev, d));
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
        } else if r.upstream_logged && r.upstream_addr().is_none() {
            format!(
                "no upstream attempt: nginx answered {} itself and logged no limit_req or limit_conn line for it (a `return {}`, a maintenance or error page, or a limit whose log level the error_log hides)",
                r.status, r.status
            )
        } else if r.upstream_addr().is_none() && r.status == 503 {
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
