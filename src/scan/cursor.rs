//! The per-chunk line driver: turns the lines of one chunk (or of a compressed file's blocks,
//! in order) into counts, events and accounting.
//!
//! Input: byte blocks of one source, each ending on a record boundary. Output: additions to
//! the worker's `Partial`. Invariants: every physical line is counted exactly once as
//! parsed, malformed or skipped; line numbers are relative to the chunk (fixed up when
//! chunks are merged); healthy access lines allocate nothing; a record never spans blocks.
//! Files of one kind are read here, line by line per kind; mixed files (several kinds, or
//! envelopes) by `mixed`; the records themselves by `records`.

use super::{mixed, Partial, ScanCtx};
use crate::chunk::Lines;
use crate::model::span::{hour_of, HourCell, HOUR_MS};
use crate::model::time::{OffsetClock, WallClock, WallFit};
use crate::model::{Diagnostic, FileStats, LogKind, Origin, Sample, Severity, Ts};
use crate::parse::access::AccessFormat;
use crate::parse::{fpm, nginx_error};
use std::sync::Arc;

pub(super) use super::framing::strip_nuls;

/// Entries longer than this many lines stop taking continuation lines (runaway guard).
pub(super) const MAX_ENTRY_LINES: u64 = 10_000;
/// Longest text kept for a malformed-line sample.
const SAMPLE_BYTES: usize = 300;

pub(super) fn lossy(b: &[u8]) -> String {
    crate::model::texts::lossy(b).into_owned()
}

pub(super) fn opt(b: Option<&[u8]>) -> Option<String> {
    b.map(lossy)
}

/// A held row's strings from the line's bytes (invalid UTF-8 replaced, as `lossy` does).
pub(super) fn texts<const N: usize>(b: [Option<&[u8]>; N]) -> crate::model::texts::Texts<N> {
    let cows = b.map(|v| v.map(crate::model::texts::lossy));
    crate::model::texts::Texts::new(std::array::from_fn(|i| cows[i].as_deref()))
}

/// Which time range of its source a record widens (besides the source's own): the nginx error
/// and FPM ranges say when those logs cover a moment (correlation asks).
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum RangeKind {
    Access,
    Error,
    Fpm,
    Slow,
}

pub struct Cursor<'c, 'p> {
    pub(super) ctx: &'c ScanCtx<'c>,
    pub(super) part: &'p mut Partial,
    pub src: u32,
    pub(super) chunk: u32,
    kind: LogKind,
    pub(super) format: Option<&'c AccessFormat>,
    /// Lines consumed so far in this chunk (the last line's relative number).
    pub(super) line: u64,
    pub(super) clock: WallClock<'c>,
    pub(super) oclock: OffsetClock,
    pub(super) fpm_last: Option<Ts>,
    /// The time of the last record with one (mixed files: a record without a time of its
    /// own or of its envelope takes it).
    pub(super) last_ts: Option<Ts>,
    pub(super) stats: FileStats,
    samples: usize,
    /// The access-log UTC offset of the lines in a row, how many, and the instants of the
    /// first and the last: counted here and added to the partial's map when it changes (a
    /// map update per line cost 3% of a run).
    offset_run: (i32, super::OffsetSeen),
    /// The stamps of the current hour: (hour, its cell, relative line of its first stamp),
    /// added to the partial's per-source profile when the hour changes (lines come in time
    /// order, so that is about once an hour, not once a line).
    hour_run: Option<(i64, HourCell, u64)>,
    /// The origin (envelope) of the record being read; events take it.
    pub(super) origin: Option<Arc<Origin>>,
    /// The envelope's time of the record being read (`finer`).
    pub(super) env_ts: Option<Ts>,
    /// Values of a JSON access line that had escapes to undo.
    pub(super) json: Vec<u8>,
    /// The zone of the last PHP error-log stamp (its identifier, and the zone).
    pub(super) php_zone: Option<(Vec<u8>, crate::model::Zone)>,
    /// The state of a mixed file's reader.
    pub(super) mixed: Option<Box<mixed::State<'c>>>,
    /// This task's quiet error-log rows, encoded (`quiet`).
    pub(super) quiet: super::quiet::Buf,
    /// And its quiet FPM rows (`quiet_fpm`).
    pub(super) quiet_fpm: super::quiet::Buf,
}

/// No run of offsets yet (no UTC offset is `i32::MIN` seconds).
const NO_OFFSET_RUN: (i32, super::OffsetSeen) = (i32::MIN, super::OffsetSeen { lines: 0, first: 0, last: 0 });

impl<'c, 'p> Cursor<'c, 'p> {
    /// A stamp of whole seconds made finer by the record's envelope: a syslog or journal
    /// receive time, or a runtime's, in the same second is the same moment measured to the
    /// microsecond. Order within a second then follows the envelope (FPM's failed start
    /// before the connect() failures it caused), not the order of the files. A stamp with a
    /// fraction of its own, or an envelope outside its second (a skewed or delayed shipper),
    /// is left as it is.
    pub(super) fn finer(&self, ts: Ts) -> Ts {
        match self.env_ts {
            Some(e) if ts.rem_euclid(1000) == 0 && e.div_euclid(1000) == ts.div_euclid(1000) => e,
            _ => ts,
        }
    }

    pub fn new(ctx: &'c ScanCtx<'c>, part: &'p mut Partial, src: u32, chunk: u32) -> Self {
        let s = &ctx.sources[src as usize];
        let (quiet, quiet_fpm) = part.quiet_bufs.take().unwrap_or_else(|| {
            (super::quiet::Buf::new(super::quiet::Kind::Error), super::quiet::Buf::new(super::quiet::Kind::Fpm))
        });
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
            last_ts: None,
            stats: FileStats::default(),
            samples: 0,
            offset_run: NO_OFFSET_RUN,
            hour_run: None,
            origin: None,
            env_ts: None,
            json: Vec::new(),
            php_zone: None,
            mixed: (s.kind == LogKind::Mixed).then(|| Box::new(mixed::State::new(s, ctx.formats))),
            quiet,
            quiet_fpm,
        }
    }

    /// Record the accounting of this chunk.
    pub fn finish(mut self) {
        self.mixed_finish();
        self.flush_quiet();
        self.flush_offsets();
        self.flush_hour();
        let st = &mut self.part.stats[self.src as usize];
        st.add(&self.stats);
        self.part.chunk_lines.push((self.src, self.chunk, self.line));
        // Emptied by `flush_quiet` (when rows cannot be written they are held instead).
        let bufs = (std::mem::take(&mut self.quiet), std::mem::take(&mut self.quiet_fpm));
        self.part.quiet_bufs = Some(bufs);
    }

    /// Write this task's quiet rows out as runs (one per kind) (those that cannot be written join the
    /// held rows).
    pub(super) fn flush_quiet(&mut self) {
        if let Some(sink) = self.ctx.quiet {
            let back = sink.flush(&mut self.quiet, self.src, self.chunk);
            self.part.errors.extend(back.into_iter().map(|e| (self.chunk, e)));
            let back = sink.flush_fpm(&mut self.quiet_fpm, self.src, self.chunk);
            self.part.fpm.extend(back.into_iter().map(|e| (self.chunk, e)));
        }
    }

    pub fn diag(&mut self, severity: Severity, offset: Option<u64>, message: String) {
        let file = self.ctx.sources[self.src as usize].display.clone();
        self.part.diags.push(Diagnostic { severity, file, line: None, offset, message });
    }

    pub(super) fn malformed(&mut self, rel_line: u64, text: &[u8]) {
        self.stats.malformed += 1;
        if self.samples < crate::model::source::MAX_SAMPLES {
            self.samples += 1;
            let t = &text[..text.len().min(SAMPLE_BYTES)];
            self.part.samples.push((self.src, self.chunk, Sample { line: rel_line, text: lossy(t) }));
        }
    }

    #[inline]
    /// An access line stamped at `ts` (UTC ms) with offset `off` (before `last_ts` takes it).
    pub(super) fn offset_seen(&mut self, off: i32, ts: Ts) {
        if self.offset_run.0 != off {
            self.flush_offsets();
            self.offset_run = (off, super::OffsetSeen { lines: 0, first: ts, last: ts });
        }
        self.offset_run.1.lines += 1;
    }

    /// The run of one offset into the partial's map; its last instant is the last record's
    /// (`last_ts`, the run's last line or a record after it in a mixed file: storing each
    /// line's instant cost 7 instructions a line).
    fn flush_offsets(&mut self) {
        let (off, mut run) = std::mem::replace(&mut self.offset_run, NO_OFFSET_RUN);
        if run.lines > 0 {
            run.last = self.last_ts.unwrap_or(run.first).max(run.first);
            self.part.offsets.entry(off).or_insert(super::OffsetSeen { lines: 0, ..run }).add(&run);
        }
    }

    pub(super) fn in_window(&self, ts: Ts) -> bool {
        self.ctx.since.is_none_or(|s| ts >= s) && self.ctx.until.is_none_or(|u| ts < u)
    }

    /// A stamped record of `lines` physical lines, the first at relative line `line`.
    #[inline]
    pub(super) fn seen(&mut self, ts: Ts, line: u64, lines: u64, kind: RangeKind) {
        // The run's hour holds `ts` when `ts` is within its milliseconds: a range test where
        // `hour_of`'s division was one a line.
        match &mut self.hour_run {
            Some((hr, c, _)) if (ts.wrapping_sub(*hr * HOUR_MS) as u64) < HOUR_MS as u64 => {
                c.add(&HourCell { weight: lines, min: ts, max: ts })
            }
            _ => {
                self.flush_hour();
                self.hour_run = Some((hour_of(ts), HourCell { weight: lines, min: ts, max: ts }, line));
            }
        }
        let r = match kind {
            RangeKind::Error => &mut self.part.kind_ranges[self.src as usize].error,
            RangeKind::Fpm => &mut self.part.kind_ranges[self.src as usize].fpm,
            RangeKind::Access | RangeKind::Slow => return,
        };
        *r = Some(r.map_or((ts, ts), |(a, b)| (a.min(ts), b.max(ts))));
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

    pub(super) fn wall_fit(&mut self, fit: WallFit) {
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
            LogKind::PhpError => self.php_block(bytes),
            LogKind::Mixed => self.mixed_block(bytes),
            LogKind::Unknown => {
                let n = crate::chunk::count_lines(bytes);
                self.line += n;
                self.stats.lines += n;
                self.stats.skipped += n;
            }
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
        let mut l = crate::parse::access::AccessLine::default();
        for raw in Lines::new(bytes) {
            self.line += 1;
            self.stats.lines += 1;
            let line = strip_nuls(raw);
            if line.is_empty() {
                self.stats.skipped += 1;
                continue;
            }
            let n = self.line;
            if !self.access_record(fmt, line, &mut l, n, 1) {
                self.malformed(n, line);
            }
        }
    }

    fn error_block(&mut self, bytes: &[u8]) {
        let mut lines = Lines::new(bytes);
        // The open entry: (start offset, end offset, first line number, line count, open).
        let mut entry: Option<(usize, usize, u64, u64, bool)> = None;
        let flush = |cur: &mut Self, (start, end, first, n, _): (usize, usize, u64, u64, bool)| {
            let mut text = &bytes[start..end];
            text = text.strip_suffix(b"\n").unwrap_or(text);
            text = text.strip_suffix(b"\r").unwrap_or(text);
            cur.error_record(text, first, n);
        };
        loop {
            let off = lines.offset();
            let Some(raw) = lines.next() else { break };
            self.line += 1;
            self.stats.lines += 1;
            let end = lines.offset();
            let line = strip_nuls(raw);
            let lead = raw.len() - line.len();
            if nginx_error::is_entry_start(line) {
                if let Some(e) = entry.take() {
                    flush(self, e);
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
            flush(self, e);
        }
    }

    fn fpm_block(&mut self, bytes: &[u8]) {
        for raw in Lines::new(bytes) {
            self.line += 1;
            self.stats.lines += 1;
            let line = strip_nuls(raw);
            if line.is_empty() {
                self.stats.skipped += 1;
                continue;
            }
            let n = self.line;
            self.fpm_record(line, n, 1, None);
        }
    }

    /// PHP's own error log: a record is a stamped line and the unstamped lines after it.
    fn php_block(&mut self, bytes: &[u8]) {
        let mut lines = Lines::new(bytes);
        // The open record: (start offset, end offset, first line number, line count).
        let mut rec: Option<(usize, usize, u64, u64)> = None;
        let flush = |cur: &mut Self, (start, end, first, n): (usize, usize, u64, u64)| {
            let mut text = &bytes[start..end];
            text = text.strip_suffix(b"\n").unwrap_or(text);
            text = text.strip_suffix(b"\r").unwrap_or(text);
            cur.php_record(text, first, n);
        };
        loop {
            let off = lines.offset();
            let Some(raw) = lines.next() else { break };
            self.line += 1;
            self.stats.lines += 1;
            let end = lines.offset();
            let line = strip_nuls(raw);
            if crate::parse::php_error::is_start(line) {
                if let Some(r) = rec.take() {
                    flush(self, r);
                }
                rec = Some((off + raw.len() - line.len(), end, self.line, 1));
                continue;
            }
            match rec.as_mut() {
                Some(r) if r.3 < MAX_ENTRY_LINES => {
                    r.1 = end;
                    r.3 += 1;
                }
                _ if line.is_empty() => self.stats.skipped += 1,
                _ => {
                    let n = self.line;
                    self.malformed(n, line);
                }
            }
        }
        if let Some(r) = rec {
            flush(self, r);
        }
    }

    fn slow_block(&mut self, bytes: &[u8]) {
        // (line number, text) of the current block's lines, header first.
        let mut block: Vec<(u64, &[u8])> = Vec::new();
        for raw in Lines::new(bytes) {
            self.line += 1;
            self.stats.lines += 1;
            let line = strip_nuls(raw);
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
}
