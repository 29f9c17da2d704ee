//! The per-chunk line driver: turns the lines of one chunk (or of a gzip file's blocks, in
//! order) into counts, events and accounting.
//!
//! Input: byte blocks of one source, each ending on a record boundary. Output: additions to
//! the worker's `Partial`. Invariants: every physical line is counted exactly once as
//! parsed, malformed or skipped; line numbers are relative to the chunk (fixed up when
//! chunks are merged); healthy access lines allocate nothing; a record never spans blocks.

use super::traffic::Metric;
use super::{Partial, ScanCtx};
use crate::chunk::Lines;
use crate::model::event::Phase;
use crate::model::span::{hour_of, HourCell};
use crate::model::time::{
    parse_fpm_wall, parse_iso8601, parse_msec, parse_nginx_error_wall, OffsetClock, WallClock, WallFit,
};
use crate::model::{
    Diagnostic, ErrorEvent, FileStats, FpmEvent, FpmKind, Level, LogKind, RequestEvent, Sample, Severity, Ts,
};
use crate::parse::access::{self, parse_secs_ms, AccessFormat, Var};
use crate::parse::{fpm, nginx_error};

/// Entries longer than this many lines stop taking continuation lines (runaway guard).
const MAX_ENTRY_LINES: u64 = 10_000;
/// Longest text kept for a malformed-line sample.
const SAMPLE_BYTES: usize = 300;

fn lossy(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn opt(b: Option<&[u8]>) -> Option<String> {
    b.map(lossy)
}

pub struct Cursor<'c, 'p> {
    ctx: &'c ScanCtx<'c>,
    part: &'p mut Partial,
    pub src: u32,
    chunk: u32,
    kind: LogKind,
    format: Option<&'c AccessFormat>,
    /// Lines consumed so far in this chunk (the last line's relative number).
    line: u64,
    clock: WallClock<'c>,
    oclock: OffsetClock,
    fpm_last: Option<Ts>,
    stats: FileStats,
    samples: usize,
    /// The access-log UTC offset of the lines in a row and how many: counted here and
    /// added to the partial's map when it changes (a map update per line cost 3% of a run).
    offset_run: (i32, u64),
    /// The stamps of the current hour: (hour, its cell, relative line of its first stamp),
    /// added to the partial's per-source profile when the hour changes (lines come in time
    /// order, so that is about once an hour, not once a line).
    hour_run: Option<(i64, HourCell, u64)>,
}

impl<'c, 'p> Cursor<'c, 'p> {
    pub fn new(ctx: &'c ScanCtx<'c>, part: &'p mut Partial, src: u32, chunk: u32) -> Self {
        let s = &ctx.sources[src as usize];
        Cursor {
            ctx,
            part,
            src,
            chunk,
            kind: s.kind,
            format: s.format.and_then(|f| ctx.formats.get(f)),
            line: 0,
            clock: WallClock::new(ctx.zone),
            oclock: OffsetClock::default(),
            fpm_last: None,
            stats: FileStats::default(),
            samples: 0,
            offset_run: (0, 0),
            hour_run: None,
        }
    }

    /// Record the accounting of this chunk.
    pub fn finish(mut self) {
        self.flush_offsets();
        self.flush_hour();
        let st = &mut self.part.stats[self.src as usize];
        st.add(&self.stats);
        self.part.chunk_lines.push((self.src, self.chunk, self.line));
    }

    pub fn diag(&mut self, severity: Severity, offset: Option<u64>, message: String) {
        let file = self.ctx.sources[self.src as usize].display.clone();
        self.part.diags.push(Diagnostic { severity, file, line: None, offset, message });
    }

    fn malformed(&mut self, rel_line: u64, text: &[u8]) {
        self.stats.malformed += 1;
        if self.samples < crate::model::source::MAX_SAMPLES {
            self.samples += 1;
            let t = &text[..text.len().min(SAMPLE_BYTES)];
            self.part.samples.push((self.src, self.chunk, Sample { line: rel_line, text: lossy(t) }));
        }
    }

    #[inline]
    fn offset_seen(&mut self, off: i32) {
        if self.offset_run.0 != off {
            self.flush_offsets();
            self.offset_run.0 = off;
        }
        self.offset_run.1 += 1;
    }

    fn flush_offsets(&mut self) {
        let (off, n) = std::mem::take(&mut self.offset_run);
        if n > 0 {
            *self.part.offsets.entry(off).or_insert(0) += n;
        }
    }

    fn in_window(&self, ts: Ts) -> bool {
        self.ctx.since.is_none_or(|s| ts >= s) && self.ctx.until.is_none_or(|u| ts < u)
    }

    /// A stamped record of `lines` physical lines, the first at relative line `line`.
    #[inline]
    fn seen(&mut self, ts: Ts, line: u64, lines: u64) {
        let h = hour_of(ts);
        match &mut self.hour_run {
            Some((hr, c, _)) if *hr == h => c.add(&HourCell { weight: lines, min: ts, max: ts }),
            _ => {
                self.flush_hour();
                self.hour_run = Some((h, HourCell { weight: lines, min: ts, max: ts }, line));
            }
        }
    }

    fn flush_hour(&mut self) {
        if let Some((h, c, line)) = self.hour_run.take() {
            let first = (self.chunk, line);
            self.part.stamps[self.src as usize]
                .entry(h)
                .and_modify(|(x, f)| {
                    x.add(&c);
                    *f = (*f).min(first);
                })
                .or_insert((c, first));
        }
    }

    fn wall_fit(&mut self, fit: WallFit) {
        match fit {
            WallFit::Exact => {}
            WallFit::Ambiguous => self.part.wall_fits[0] += 1,
            WallFit::Gap => self.part.wall_fits[1] += 1,
        }
    }

    /// Feed one block of whole records.
    pub fn feed(&mut self, bytes: &[u8]) {
        self.stats.bytes += bytes.len() as u64;
        match self.kind {
            LogKind::NginxAccess => self.access_block(bytes),
            LogKind::NginxError => self.error_block(bytes),
            LogKind::FpmMaster => self.fpm_block(bytes),
            LogKind::FpmSlow => self.slow_block(bytes),
            LogKind::Unknown => {
                let n = crate::chunk::count_lines(bytes);
                self.line += n;
                self.stats.lines += n;
                self.stats.skipped += n;
            }
        }
    }

    /// NUL runs (a `copytruncate` hole) before a line's content are not part of it.
    #[inline]
    fn strip_nuls(line: &[u8]) -> &[u8] {
        if line.first() == Some(&0) {
            let n = line.iter().take_while(|&&c| c == 0).count();
            &line[n..]
        } else {
            line
        }
    }

    fn access_block(&mut self, bytes: &[u8]) {
        let Some(fmt) = self.format else {
            let n = crate::chunk::count_lines(bytes);
            self.line += n;
            self.stats.lines += n;
            self.stats.malformed += n;
            return;
        };
        for raw in Lines::new(bytes) {
            self.line += 1;
            self.stats.lines += 1;
            let line = Self::strip_nuls(raw);
            if line.is_empty() {
                self.stats.skipped += 1;
                continue;
            }
            if !self.access_line(fmt, line) {
                let n = self.line;
                self.malformed(n, line);
            }
        }
    }

    /// One access line; false if malformed.
    #[inline]
    fn access_line(&mut self, fmt: &AccessFormat, line: &[u8]) -> bool {
        let mut l = access::AccessLine::default();
        if !fmt.parse_into(line, &mut l) {
            return false;
        }
        let ts = if let Some(t) = l.raw(Var::TimeLocal) {
            match self.oclock.time_local(t) {
                Some((ts, off)) => {
                    self.offset_seen(off);
                    ts
                }
                None => return false,
            }
        } else if let Some(t) = l.raw(Var::TimeIso8601) {
            match parse_iso8601(t) {
                Some((s, off)) => {
                    self.offset_seen(off);
                    s * 1000
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
        if !self.in_window(ts) {
            self.stats.skipped += 1;
            return true;
        }
        self.stats.parsed += 1;
        self.seen(ts, self.line, 1);
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
        if let Some(addr) = l.get(Var::UpstreamAddr) {
            let mut st = ustatus.map(access::list_items);
            let mut times = urt.map(access::list_items);
            for peer in access::list_items(addr) {
                let s = st.as_mut().and_then(|i| i.next()).and_then(access::parse_u16).unwrap_or(0);
                let t = times.as_mut().and_then(|i| i.next()).and_then(parse_secs_ms);
                tr.attempt(peer, s, ts, t);
            }
        }
        if let Some(ms) = urt.and_then(access::list_time_total) {
            tr.latency(sec, Metric::UpstreamResponseTime, ms);
        }
        if let Some(h) = l.host() {
            tr.host(h, client_failed);
        }
        if client_failed || attempt_failed {
            let (method, uri) = l.request_parts();
            let secs = |v: Var| l.get(v).and_then(access::list_time_total).map(|ms| ms as f64 / 1000.0);
            let ev = RequestEvent {
                ts,
                source: self.src,
                line: self.line,
                status,
                method: opt(method),
                uri: opt(uri),
                request: opt(l.get(Var::Request)),
                client: opt(l.get(Var::RemoteAddr)),
                host: opt(l.host()),
                upstream_addr: opt(l.get(Var::UpstreamAddr)),
                upstream_status: opt(ustatus),
                request_time: rt.map(|ms| ms as f64 / 1000.0),
                upstream_response_time: secs(Var::UpstreamResponseTime),
                upstream_connect_time: secs(Var::UpstreamConnectTime),
                upstream_header_time: secs(Var::UpstreamHeaderTime),
                attempts: ustatus.map(access::list_statuses).unwrap_or_default(),
                user_agent: opt(l.get(Var::HttpUserAgent)),
            };
            self.part.requests.push((self.chunk, ev));
        }
        true
    }

    fn error_block(&mut self, bytes: &[u8]) {
        let mut lines = Lines::new(bytes);
        // The open entry: (start offset, end offset, first line number, line count, open).
        let mut entry: Option<(usize, usize, u64, u64, bool)> = None;
        loop {
            let off = lines.offset();
            let Some(raw) = lines.next() else { break };
            self.line += 1;
            self.stats.lines += 1;
            let end = lines.offset();
            let line = Self::strip_nuls(raw);
            let lead = raw.len() - line.len();
            if nginx_error::is_entry_start(line) {
                if let Some(e) = entry.take() {
                    self.error_entry(bytes, e);
                }
                entry = Some((off + lead, end, self.line, 1, nginx_error::opens_continuation(line)));
                continue;
            }
            match entry.as_mut() {
                Some(e) if e.4 && e.3 < MAX_ENTRY_LINES => {
                    e.1 = end;
                    e.3 += 1;
                    if nginx_error::has_context(line) {
                        e.4 = false;
                    }
                }
                _ if line.is_empty() => self.stats.skipped += 1,
                _ => {
                    let n = self.line;
                    self.malformed(n, line);
                }
            }
        }
        if let Some(e) = entry {
            self.error_entry(bytes, e);
        }
    }

    fn error_entry(&mut self, bytes: &[u8], (start, end, first, nlines, _): (usize, usize, u64, u64, bool)) {
        let mut text = &bytes[start..end];
        text = text.strip_suffix(b"\n").unwrap_or(text);
        text = text.strip_suffix(b"\r").unwrap_or(text);
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
        if !self.in_window(ts) {
            self.stats.skipped += nlines;
            return;
        }
        self.wall_fit(fit);
        self.stats.parsed += nlines;
        self.seen(ts, first, nlines);
        let c = self.ctx.classifier.classify(&l);
        let level = l.level.unwrap_or(Level::Error);
        if !(level.at_least_warn() || c.signature != "other") {
            return;
        }
        let errno = l.errno.map(|n| crate::classify::canonical_errno(n, l.errno_text.unwrap_or_default()));
        let ev = ErrorEvent {
            ts,
            source: self.src,
            line: first,
            lines: nlines as u32,
            level,
            pid: l.pid,
            conn: l.conn,
            signature: c.signature,
            errno,
            phase: l.action.map(Phase::from_action).unwrap_or(Phase::None),
            class: c.class,
            cause: c.cause,
            failure: c.failure,
            client: opt(l.client),
            server: opt(l.server),
            request: opt(l.request),
            upstream: opt(l.upstream),
            host: opt(l.host),
            referrer: opt(l.referrer),
            message: lossy(l.message),
        };
        self.part.errors.push((self.chunk, ev));
    }

    fn fpm_block(&mut self, bytes: &[u8]) {
        for raw in Lines::new(bytes) {
            self.line += 1;
            self.stats.lines += 1;
            let line = Self::strip_nuls(raw);
            if line.is_empty() {
                self.stats.skipped += 1;
                continue;
            }
            let Some(fl) = fpm::parse_line(line) else {
                let n = self.line;
                self.malformed(n, line);
                continue;
            };
            let (ts, exact) = match fl.stamp {
                Some(st) => match self.clock.get(st, parse_fpm_wall) {
                    Some((t, fit)) => {
                        self.wall_fit(fit);
                        let t = t + fl.micros.map(|u| u as i64 / 1000).unwrap_or(0);
                        self.fpm_last = Some(t);
                        (t, true)
                    }
                    None => {
                        let n = self.line;
                        self.malformed(n, line);
                        continue;
                    }
                },
                // Worker output carries no stamp: it takes the previous stamped line's time.
                None => (self.fpm_last.unwrap_or(0), false),
            };
            if exact && !self.in_window(ts) || !exact && self.fpm_last.is_some_and(|t| !self.in_window(t)) {
                self.stats.skipped += 1;
                continue;
            }
            self.stats.parsed += 1;
            if exact {
                self.seen(ts, self.line, 1);
            }
            let level = fl.level.unwrap_or(Level::Notice);
            let info = fpm::interpret(fl.body);
            if info.kind == FpmKind::Other && !level.at_least_warn() {
                continue;
            }
            let ev = FpmEvent {
                ts,
                ts_exact: exact,
                source: self.src,
                line: self.line,
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
            };
            self.part.fpm.push((self.chunk, ev));
        }
    }

    fn slow_block(&mut self, bytes: &[u8]) {
        // (line number, text) of the current block's lines, header first.
        let mut block: Vec<(u64, &[u8])> = Vec::new();
        for raw in Lines::new(bytes) {
            self.line += 1;
            self.stats.lines += 1;
            let line = Self::strip_nuls(raw);
            if fpm::is_slow_block_start(line) {
                self.slow_flush(&mut block);
                block.push((self.line, line));
            } else if line.is_empty() {
                // FPM ends every block with a blank line.
                self.stats.skipped += 1;
                self.slow_flush(&mut block);
            } else if block.is_empty() {
                let n = self.line;
                self.malformed(n, line);
            } else {
                block.push((self.line, line));
            }
        }
        self.slow_flush(&mut block);
    }

    /// Every line of a block that cannot be read is malformed, with its own sample.
    fn slow_malformed(&mut self, lines: &[(u64, &[u8])]) {
        for &(n, l) in lines {
            self.malformed(n, l);
        }
    }

    fn slow_flush(&mut self, block: &mut Vec<(u64, &[u8])>) {
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
        if !self.in_window(ts) {
            self.stats.skipped += n;
            block.clear();
            return;
        }
        self.wall_fit(fit);
        self.seen(ts, first, n);
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
        };
        self.part.fpm.push((self.chunk, ev));
        block.clear();
    }
}
