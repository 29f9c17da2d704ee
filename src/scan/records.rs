//! One record of each kind into counts, events and accounting: an access line, an nginx
//! error entry, an FPM line, a slow-log block. Shared by the readers of single-kind files
//! (`cursor`) and of mixed files (`mixed`).
//!
//! Input: a record's bytes, the number of its first physical line (relative to the chunk)
//! and how many physical lines it spans. Output: additions to the worker's `Partial` and the
//! chunk's `FileStats`. Invariants: every physical line of the record is counted once as
//! parsed, malformed or skipped; healthy access lines allocate nothing; events carry the
//! origin of the record being read (`Cursor::origin`).

use super::cursor::{lossy, opt, texts, Cursor, RangeKind};
use super::traffic::Metric;
use crate::model::event::{is_quiet, ErrorRef, Phase};
use crate::model::time::{parse_fpm_wall, parse_iso8601, parse_msec, parse_nginx_error_wall};
use crate::model::{FpmEvent, FpmKind, Level, Origin, RequestEvent, Ts};
use crate::parse::access::{self, parse_secs_ms, AccessFormat, AccessLine, Var};
use crate::parse::{fpm, nginx_error};

impl Cursor<'_, '_> {
    /// One access record (`nlines` physical lines from `line_no`); false if malformed (the
    /// caller counts and samples it). `l` is the caller's, kept from line to line of `fmt`
    /// (`AccessFormat::parse_into`: zeroing its 440 bytes for every line was 5% of the parser's
    /// instructions).
    #[inline]
    pub(super) fn access_record<'a>(
        &mut self,
        fmt: &AccessFormat,
        line: &'a [u8],
        l: &mut AccessLine<'a>,
        line_no: u64,
        nlines: u64,
    ) -> bool {
        if !fmt.is_json() {
            return fmt.parse_into(line, l) && self.access_fields(l, line_no, nlines);
        }
        // A JSON line holds the keys it holds: a fresh line every time.
        let mut l = AccessLine::default();
        let mut json = std::mem::take(&mut self.json);
        let ok = fmt.parse_with(line, &mut json, &mut l) && self.access_fields(&l, line_no, nlines);
        self.json = json;
        ok
    }

    /// The fields of a parsed access line; false if its time or status cannot be read.
    pub(super) fn access_fields(&mut self, l: &AccessLine, line_no: u64, nlines: u64) -> bool {
        let ts = if let Some(t) = l.raw(Var::TimeLocal) {
            match self.oclock.time_local(t) {
                Some((ts, off)) => {
                    self.offset_seen(off, ts);
                    self.finer(ts)
                }
                None => return false,
            }
        } else if let Some(t) = l.raw(Var::TimeIso8601) {
            match parse_iso8601(t) {
                Some((s, off)) => {
                    self.offset_seen(off, s * 1000);
                    self.finer(s * 1000)
                }
                None => return false,
            }
        } else {
            match l.raw(Var::Msec).and_then(parse_msec) {
                Some(t) => t,
                None => return false,
            }
        };
        let Some(status) = l.status() else {
            return false;
        };
        self.last_ts = Some(ts);
        if !self.in_window(ts) {
            self.stats.skipped += nlines;
            return true;
        }
        self.stats.parsed += nlines;
        if l.trailing {
            self.stats.prefix_fit += 1;
        }
        self.seen(ts, line_no, nlines, RangeKind::Access);
        let ustatus = l.get(Var::UpstreamStatus);
        let attempt_failed = ustatus.is_some_and(access::any_attempt_failed);
        let client_failed = status == 499 || status >= 500;
        let sec = ts.div_euclid(1000);
        let tr = &mut self.part.traffic;
        tr.count(sec, status, attempt_failed && !client_failed);
        let rt = l.get(Var::RequestTime).and_then(parse_secs_ms);
        if let Some(ms) = rt {
            tr.latency(sec, Metric::RequestTime, ms);
        }
        let urt = l.get(Var::UpstreamResponseTime);
        // The attempts' times, summed as they are read (`list_time_total` read them again).
        let mut urt_total = None;
        let mut add = |t: Option<u32>| {
            if let Some(v) = t {
                urt_total = Some(urt_total.unwrap_or(0u32).saturating_add(v));
            }
        };
        let addr = l.get(Var::UpstreamAddr);
        // One attempt (a peer, a status and a time, none of them a list), as on almost every
        // line: the same steps as the loop below without its iterators (37 instructions a
        // line fewer, callgrind, 100 MB of the plain shop log).
        if let (Some(peer), Some(s), Some(t)) =
            (addr.and_then(access::single), ustatus.and_then(access::single), urt.and_then(access::single))
        {
            let t = parse_secs_ms(t);
            add(t);
            tr.attempt(peer, access::parse_u16(s).unwrap_or(0), ts, t);
        } else if let Some(addr) = addr {
            let mut st = ustatus.map(access::list_items);
            let mut times = urt.map(access::list_items);
            for peer in access::list_items(addr) {
                let s = st.as_mut().and_then(|i| i.next()).and_then(access::parse_u16).unwrap_or(0);
                let t = times.as_mut().and_then(|i| i.next()).and_then(parse_secs_ms);
                add(t);
                tr.attempt(peer, s, ts, t);
            }
            // Times past the last peer (a `for_each` over the flattened option was a call a
            // line for a list that is almost always empty).
            if let Some(rest) = times.as_mut() {
                for t in rest {
                    add(parse_secs_ms(t));
                }
            }
        } else {
            urt_total = urt.and_then(access::list_time_total);
        }
        if let Some(ms) = urt_total {
            tr.latency(sec, Metric::UpstreamResponseTime, ms);
        }
        if let Some(h) = l.host() {
            tr.host(h, client_failed);
        }
        if client_failed || attempt_failed {
            // With `$request` the row's method and target are read from it (`RequestEvent::method`).
            let (method, uri) = if l.get(Var::Request).is_some() { (None, None) } else { l.request_parts() };
            let secs = |v: Var| l.get(v).and_then(access::list_time_total).map(|ms| ms as f64 / 1000.0);
            let ev = RequestEvent {
                ts,
                source: self.src,
                line: line_no,
                status,
                texts: texts([
                    method,
                    uri,
                    l.get(Var::Request),
                    l.get(Var::RemoteAddr),
                    l.host(),
                    l.get(Var::UpstreamAddr),
                    ustatus,
                ]),
                user_agent: l.get(Var::HttpUserAgent).map(|u| self.part.intern.get(&crate::model::texts::lossy(u))),
                upstream_logged: l.raw(Var::UpstreamAddr).is_some() || l.raw(Var::UpstreamStatus).is_some(),
                request_time: rt.map(|ms| ms as f64 / 1000.0),
                upstream_response_time: secs(Var::UpstreamResponseTime),
                upstream_connect_time: secs(Var::UpstreamConnectTime),
                upstream_header_time: secs(Var::UpstreamHeaderTime),
                attempts: ustatus.map(access::list_statuses).unwrap_or_default().into_boxed_slice(),
                origin: self.origin.clone(),
            };
            self.part.requests.push((self.chunk, ev));
        }
        true
    }

    /// One nginx error-log entry (its first line and continuation lines, without the final
    /// newline).
    pub(super) fn error_record(&mut self, text: &[u8], first: u64, nlines: u64) {
        let Some(l) = nginx_error::parse(text) else {
            // The first line of the entry is the malformed one; its continuation lines with it.
            self.stats.malformed += nlines - 1;
            self.malformed(first, text);
            return;
        };
        let Some((ts, fit)) = self.clock.get(l.stamp, parse_nginx_error_wall) else {
            self.stats.malformed += nlines - 1;
            self.malformed(first, text);
            return;
        };
        let ts = self.finer(ts);
        self.last_ts = Some(ts);
        if !self.in_window(ts) {
            self.stats.skipped += nlines;
            return;
        }
        self.wall_fit(fit);
        self.stats.parsed += nlines;
        self.seen(ts, first, nlines, RangeKind::Error);
        let c = self.ctx.classifier.classify(&l);
        let level = l.level.unwrap_or(Level::Error);
        if !(level.at_least_warn() || c.signature != "other") {
            return;
        }
        let errno = l.errno.map(|n| crate::classify::canonical_errno(n, l.errno_text.unwrap_or_default()));
        let phase = l.action.map(Phase::from_action).unwrap_or(Phase::None);
        // Borrowed from the line's bytes: a quiet row is encoded from them and no string is
        // copied for it; the others become owned rows.
        fn cow(b: Option<&[u8]>) -> Option<std::borrow::Cow<'_, str>> {
            b.map(crate::model::texts::lossy)
        }
        let (client, server, request) = (cow(l.client), cow(l.server), cow(l.request));
        let (upstream, host, referrer) = (cow(l.upstream), cow(l.host), cow(l.referrer));
        let message = crate::model::texts::lossy(l.message);
        let ev = ErrorRef {
            ts,
            source: self.src,
            line: first,
            lines: nlines as u32,
            level,
            pid: l.pid,
            conn: l.conn,
            signature: c.signature,
            errno,
            phase,
            class: c.class,
            cause: c.cause,
            failure: c.failure,
            client: client.as_deref(),
            server: server.as_deref(),
            request: request.as_deref(),
            upstream: upstream.as_deref(),
            host: host.as_deref(),
            referrer: referrer.as_deref(),
            message: &message,
            origin: self.origin.as_deref().map(Origin::view),
        };
        match self.ctx.quiet {
            Some(sink) if is_quiet(c.failure, c.class, c.signature) => {
                sink.push(&mut self.quiet, &ev);
                if self.quiet.full() {
                    self.flush_quiet();
                }
            }
            _ => {
                let ev = ev.into_event(self.origin.clone(), self.part.intern.get(ev.message));
                self.part.errors.push((self.chunk, ev));
            }
        }
    }

    /// One FPM line (master log layouts, worker output). A line without a stamp takes
    /// `borrowed` (a time and whether it is exact: an envelope's time is), else the time of
    /// the previous stamped line of the chunk.
    pub(super) fn fpm_record(&mut self, line: &[u8], line_no: u64, nlines: u64, borrowed: Option<(Ts, bool)>) {
        if fpm::is_stamped(line) {
            // A chunk of an FPM log may begin at any stamped line: what the unstamped lines
            // after it take must not reach back over it, even when it is unreadable (found by
            // the `chunk` fuzz target: a slow-log header inside a master log).
            self.fpm_last = None;
        }
        let Some(fl) = fpm::parse_line(line) else {
            self.stats.malformed += nlines - 1;
            self.malformed(line_no, line);
            return;
        };
        let (ts, exact) = match fl.stamp {
            Some(st) => match self.clock.get(st, parse_fpm_wall) {
                Some((t, fit)) => {
                    self.wall_fit(fit);
                    let t = t - self.ctx.fpm_clock_ms;
                    let t = match fl.micros {
                        Some(u) => t + u as i64 / 1000,
                        None => self.finer(t),
                    };
                    self.fpm_last = Some(t);
                    self.last_ts = Some(t);
                    (t, true)
                }
                None => {
                    self.stats.malformed += nlines - 1;
                    self.malformed(line_no, line);
                    return;
                }
            },
            // Worker output carries no stamp: it takes the previous stamped line's time.
            None => borrowed.unwrap_or((self.fpm_last.unwrap_or(0), false)),
        };
        let known = fl.stamp.is_some() || borrowed.is_some() || self.fpm_last.is_some();
        if known && !self.in_window(ts) {
            self.stats.skipped += nlines;
            return;
        }
        self.stats.parsed += nlines;
        if exact {
            self.seen(ts, line_no, nlines, RangeKind::Fpm);
        }
        let level = fl.level.unwrap_or(Level::Notice);
        let info = fpm::interpret_at(fl.body, Some(level));
        if info.kind == FpmKind::Other && !level.at_least_warn() {
            return;
        }
        let ev = FpmEvent {
            ts,
            ts_exact: exact,
            source: self.src,
            line: line_no,
            level,
            pool: opt(info.pool),
            kind: info.kind,
            child_pid: info.child_pid,
            signal: info.signal,
            exit_code: info.exit_code,
            script: opt(info.script),
            request: opt(info.request),
            elapsed_s: info.elapsed_s,
            message: lossy(fl.body),
            origin: self.origin.clone(),
        };
        match self.ctx.quiet {
            Some(sink) if ev.is_quiet() => {
                sink.push_fpm(&mut self.quiet_fpm, &ev);
                if self.quiet_fpm.full() {
                    self.flush_quiet();
                }
            }
            _ => self.part.fpm.push((self.chunk, ev)),
        }
    }

    /// One record of PHP's own error log (its stamped line and the lines after it), read in
    /// the zone its stamp names. Errors and warnings become FPM events (`php_message`), the
    /// way PHP's messages relayed by FPM do; notices and deprecations are only counted.
    pub(super) fn php_record(&mut self, text: &[u8], first: u64, nlines: u64) {
        let Some(p) = crate::parse::php_error::parse(text) else {
            self.stats.malformed += nlines - 1;
            self.malformed(first, text);
            return;
        };
        let Some(ts) = self.php_ts(&p) else {
            self.stats.malformed += nlines - 1;
            self.malformed(first, text);
            return;
        };
        let ts = self.finer(ts);
        self.last_ts = Some(ts);
        if !self.in_window(ts) {
            self.stats.skipped += nlines;
            return;
        }
        self.stats.parsed += nlines;
        self.seen(ts, first, nlines, RangeKind::Slow);
        if !p.level.at_least_warn() {
            return;
        }
        let ev = FpmEvent {
            ts,
            ts_exact: true,
            source: self.src,
            line: first,
            level: p.level,
            pool: None,
            kind: FpmKind::PhpMessage,
            child_pid: None,
            signal: None,
            exit_code: None,
            script: opt(p.script),
            request: None,
            elapsed_s: None,
            message: lossy(p.message),
            origin: self.origin.clone(),
        };
        self.part.fpm.push((self.chunk, ev));
    }

    /// The instant of a PHP error-log stamp, in the zone it names (a zone the tz database
    /// does not know: the run's zone).
    pub(super) fn php_ts(&mut self, p: &crate::parse::php_error::PhpErrorLine) -> Option<Ts> {
        let wall = crate::model::time::parse_fpm_wall(p.stamp)?;
        let zone = match &self.php_zone {
            Some((z, zone)) if z[..] == *p.zone => zone.clone(),
            _ => {
                let zone = crate::model::Zone::parse(&String::from_utf8_lossy(p.zone))
                    .unwrap_or_else(|_| self.ctx.zone.clone());
                self.php_zone = Some((p.zone.to_vec(), zone.clone()));
                zone
            }
        };
        Some(zone.wall_to_utc(wall).0 * 1000)
    }

    /// Every line of a block that cannot be read is malformed, with its own sample.
    fn slow_malformed(&mut self, lines: &[(u64, &[u8])]) {
        for &(n, l) in lines {
            self.malformed(n, l);
        }
    }

    /// One slow-log block (header first, with the number of each line), then empty it.
    pub(super) fn slow_flush(&mut self, block: &mut Vec<(u64, &[u8])>) {
        if block.is_empty() {
            return;
        }
        let n = block.len() as u64;
        let first = block[0].0;
        let lines: Vec<&[u8]> = block.iter().map(|x| x.1).collect();
        let Some(b) = fpm::parse_slow_block(&lines) else {
            self.slow_malformed(block);
            block.clear();
            return;
        };
        let Some((ts, fit)) = self.clock.get(b.header.stamp, parse_fpm_wall) else {
            self.slow_malformed(block);
            block.clear();
            return;
        };
        let ts = self.finer(ts - self.ctx.fpm_clock_ms);
        self.last_ts = Some(ts);
        if !self.in_window(ts) {
            self.stats.skipped += n;
            block.clear();
            return;
        }
        self.wall_fit(fit);
        self.seen(ts, first, n, RangeKind::Slow);
        self.stats.parsed += n - b.odd_lines as u64;
        for &(ln, l) in &block[1..] {
            if !fpm::is_slow_body_line(l) {
                self.malformed(ln, l);
            }
        }
        let ev = FpmEvent {
            ts,
            ts_exact: true,
            source: self.src,
            line: first,
            level: Level::Notice,
            pool: Some(lossy(b.header.pool)),
            kind: FpmKind::SlowlogTrace,
            child_pid: Some(b.header.pid),
            signal: None,
            exit_code: None,
            script: opt(b.script),
            request: None,
            elapsed_s: None,
            message: opt(b.first_frame).unwrap_or_default(),
            origin: self.origin.clone(),
        };
        self.part.fpm.push((self.chunk, ev));
        block.clear();
    }
}
