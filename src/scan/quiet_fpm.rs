//! Quiet FPM rows: the FPM lines no rule reads, in the quiet rows' temporary file (`quiet`).
//!
//! Input: `FpmEvent`s with `FpmEvent::is_quiet` (a child started, a child exited with code 0:
//! three quarters of a busy FPM log, read by no correlation rule, since a clean exit explains
//! no failure). Output: the same rows read back from `QuietRows`: merged in (time, file, line)
//! order for `fpm.csv` and `events.parquet`, or their heads (time, kind, pool, script) for
//! `by_pool.csv`'s counts.
//!
//! Invariants: the encoding shares the error rows' first fields (length, time, line), so runs
//! of both kinds share the file and the merge (`quiet_rows::Order`); a decoded row equals the row
//! encoded (`tests::round_trip`).

use super::quiet::{put_str, Buf, Sink};
use super::quiet_rows::{rd, Kind, Order, QuietRows, NONE};
use crate::model::{Envelope, FpmEvent, FpmKind, Level, Origin, Stream, Ts};
use std::sync::Arc;

impl Sink {
    /// Encode `e` (line relative to its chunk) into `buf` (of kind `Kind::Fpm`). Layout
    /// (little-endian): length u32 @0, time i64 @4, line u64 @12, kind, level, flags u8
    /// @20..23, child pid u32 @23, signal u32 @27, exit code i32 @31, elapsed f64 @35, then
    /// the strings (pool, script, request, message: u32 length or `NONE`, bytes) and the
    /// envelope.
    pub fn push_fpm(&self, buf: &mut Buf, e: &FpmEvent) {
        let at = buf.begin_row(e.ts, e.line);
        let b = buf.bytes();
        let flags = e.ts_exact as u8
            | (e.child_pid.is_some() as u8) << 1
            | (e.signal.is_some() as u8) << 2
            | (e.exit_code.is_some() as u8) << 3
            | (e.elapsed_s.is_some() as u8) << 4
            | (e.origin.is_some() as u8) << 5;
        b.extend_from_slice(&[e.kind as u8, e.level as u8, flags]);
        b.extend_from_slice(&e.child_pid.unwrap_or(0).to_le_bytes());
        b.extend_from_slice(&e.signal.unwrap_or(0).to_le_bytes());
        b.extend_from_slice(&e.exit_code.unwrap_or(0).to_le_bytes());
        b.extend_from_slice(&e.elapsed_s.unwrap_or(0.0).to_le_bytes());
        for s in [e.pool.as_deref(), e.script.as_deref(), e.request.as_deref(), Some(e.message.as_str())] {
            put_str(b, s);
        }
        if let Some(o) = &e.origin {
            b.push(o.envelope as u8);
            put_str(b, o.name.as_deref());
            b.push(o.stream.map_or(u8::MAX, |s| s as u8));
            put_str(b, o.host.as_deref());
        }
        buf.end_row(at, e.ts, e.line);
    }

    /// `flush` for FPM rows: write `buf` out as a run; rows that cannot be written come back.
    pub fn flush_fpm(&self, buf: &mut Buf, src: u32, chunk: u32) -> Vec<FpmEvent> {
        let mut back = Vec::new();
        if let Some(out) = self.write_run(buf, src, chunk) {
            let mut pos = 0;
            while let Some((e, next)) = decode(&out, pos, src) {
                back.push(e);
                pos = next;
            }
        }
        back
    }
}

/// What `by_pool.csv` counts of a row, borrowed from the file.
#[derive(Clone, Copy, Debug)]
pub struct FpmHead<'q> {
    pub ts: Ts,
    pub kind: FpmKind,
    pub pool: Option<&'q str>,
    pub script: Option<&'q str>,
}

/// The string at `*p` of the row `r` (`None` inside when absent), moving `p` past it.
fn string<'b>(r: &'b [u8], p: &mut usize) -> Option<Option<&'b str>> {
    let n = u32::from_le_bytes(rd(r, *p)?);
    *p += 4;
    if n == NONE {
        return Some(None);
    }
    let s = r.get(*p..*p + n as usize)?;
    *p += n as usize;
    // Written from `String`s: UTF-8 (checked all the same).
    std::str::from_utf8(s).ok().map(Some)
}

fn head(b: &[u8], pos: usize) -> Option<FpmHead<'_>> {
    let len = u32::from_le_bytes(rd(b, pos)?) as usize;
    let r = b.get(pos..pos + len)?;
    let mut p = 43;
    let (pool, script) = (string(r, &mut p)?, string(r, &mut p)?);
    Some(FpmHead { ts: i64::from_le_bytes(rd(r, 4)?), kind: *FpmKind::ALL.get(*r.get(20)? as usize)?, pool, script })
}

/// The row at `pos` (line relative to its chunk), owned, and where the next starts.
fn decode(b: &[u8], pos: usize, src: u32) -> Option<(FpmEvent, usize)> {
    let len = u32::from_le_bytes(rd(b, pos)?) as usize;
    let r = b.get(pos..pos + len)?;
    let flags = *r.get(22)?;
    let some = |bit: u8| flags & bit != 0;
    let owned = |s: Option<&str>| s.map(str::to_string);
    let mut p = 43;
    let (pool, script) = (owned(string(r, &mut p)?), owned(string(r, &mut p)?));
    let (request, message) = (owned(string(r, &mut p)?), string(r, &mut p)?.unwrap_or_default().to_string());
    let origin = if some(32) {
        let envelope = *Envelope::ALL.get(*r.get(p)? as usize)?;
        p += 1;
        let name = owned(string(r, &mut p)?);
        let stream = Stream::ALL.get(*r.get(p)? as usize).copied();
        p += 1;
        let host = owned(string(r, &mut p)?);
        Some(Arc::new(Origin { envelope, name, stream, host }))
    } else {
        None
    };
    let e = FpmEvent {
        ts: i64::from_le_bytes(rd(r, 4)?),
        ts_exact: some(1),
        source: src,
        line: u64::from_le_bytes(rd(r, 12)?),
        level: *Level::ALL.get(*r.get(21)? as usize)?,
        pool,
        kind: *FpmKind::ALL.get(*r.get(20)? as usize)?,
        child_pid: some(2).then(|| rd(r, 23).map(u32::from_le_bytes)).flatten(),
        signal: some(4).then(|| rd(r, 27).map(u32::from_le_bytes)).flatten(),
        exit_code: some(8).then(|| rd(r, 31).map(i32::from_le_bytes)).flatten(),
        script,
        request,
        elapsed_s: some(16).then(|| rd(r, 35).map(f64::from_le_bytes)).flatten(),
        message,
        origin,
    };
    Some((e, pos + len))
}

impl QuietRows {
    /// Every FPM row in (time, `rank[source]`, line, source) order, decoded one at a time.
    pub fn fpm_merged<'q>(&'q self, rank: &'q [u32]) -> impl Iterator<Item = FpmEvent> + 'q {
        let mut order = Order::new(self, Kind::Fpm, rank);
        std::iter::from_fn(move || {
            let (r, at) = order.next_at()?;
            let (mut e, _) = decode(self.bytes(r), at, r.src)?;
            e.line += r.base;
            Some(e)
        })
    }

    /// Every FPM row's head, run by run (not in time order).
    pub fn fpm_heads(&self) -> impl Iterator<Item = FpmHead<'_>> + '_ {
        self.runs_of(Kind::Fpm).flat_map(move |(_, r)| {
            let b = self.bytes(r);
            let mut pos = 0;
            std::iter::from_fn(move || {
                let h = head(b, pos)?;
                pos += u32::from_le_bytes(rd(b, pos)?) as usize;
                Some(h)
            })
        })
    }

    /// Every FPM row in (time, source, line) order (tests and fuzzing compare reads).
    pub fn fpm_all(&self) -> Vec<FpmEvent> {
        let rank = self.source_rank();
        self.fpm_merged(&rank).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn row(ts: Ts, line: u64, origin: bool) -> FpmEvent {
        FpmEvent {
            ts,
            ts_exact: line % 5 != 0,
            source: 0,
            line,
            level: Level::Notice,
            pool: (line % 3 != 0).then(|| "www".to_string()),
            kind: if line % 2 == 0 { FpmKind::ChildStarted } else { FpmKind::ChildExitCode },
            child_pid: Some(1000 + line as u32),
            signal: None,
            exit_code: (line % 2 == 1).then_some(0),
            script: (line % 7 == 0).then(|| "/srv/é.php".to_string()),
            request: None,
            elapsed_s: (line % 2 == 1).then_some(line as f64 * 0.125 + 0.1),
            message: format!("[pool www] child {} exited with code 0 after {line}.1 seconds from start", 1000 + line),
            origin: origin.then(|| {
                Arc::new(Origin {
                    envelope: Envelope::DockerJson,
                    name: Some("php".into()),
                    stream: Some(Stream::Stderr),
                    host: Some("h1".into()),
                })
            }),
        }
    }

    fn same(a: &FpmEvent, b: &FpmEvent) -> bool {
        format!("{a:?}") == format!("{b:?}")
    }

    /// FPM rows written in runs beside error rows come back equal, with absolute lines, in
    /// (time, file rank, line) order; the heads name their pool and script; the error rows'
    /// readers see none of them.
    #[test]
    fn round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let sink = Sink::new(dir.path().to_path_buf(), vec!["other"]);
        let mut want = Vec::new();
        for (src, chunk, base) in [(1u32, 0u32, 0u64), (0, 1, 500), (0, 0, 0)] {
            let mut buf = Buf::new(Kind::Fpm);
            for i in (0..40u64).rev() {
                let mut e = row(2_000 + (i as i64 % 5) * 1000, i + 1, i % 3 == 0);
                sink.push_fpm(&mut buf, &e);
                e.source = src;
                e.line += base;
                want.push(e);
            }
            assert!(sink.flush_fpm(&mut buf, src, chunk).is_empty());
        }
        let base = |src: u32, chunk: u32| if (src, chunk) == (0, 1) { 500 } else { 0 };
        let (q, warn) = sink.finish(base);
        assert!(warn.is_none());
        let q = q.unwrap();
        assert_eq!((q.rows, q.fpm_rows), (0, 120));
        assert_eq!(q.heads().count() + q.merged(&[0, 1]).count(), 0, "no error rows");
        assert_eq!(q.stamps().count(), 120);
        let got: Vec<FpmEvent> = q.fpm_merged(&[1, 0]).collect();
        want.sort_by_key(|e| (e.ts, [1, 0][e.source as usize], e.line));
        assert_eq!(got.len(), want.len());
        for (g, w) in got.iter().zip(&want) {
            assert!(same(g, w), "{g:?}\n{w:?}");
        }
        let mut heads: Vec<(Ts, FpmKind, Option<&str>, Option<&str>)> =
            q.fpm_heads().map(|h| (h.ts, h.kind, h.pool, h.script)).collect();
        let mut w: Vec<_> = want.iter().map(|e| (e.ts, e.kind, e.pool.as_deref(), e.script.as_deref())).collect();
        heads.sort();
        w.sort();
        assert_eq!(heads, w);
    }

    #[test]
    fn unwritable_dir_keeps_rows_in_memory() {
        let sink = Sink::new(PathBuf::from("/nonexistent/upcause"), vec![]);
        let mut buf = Buf::new(Kind::Fpm);
        for i in 0..4 {
            sink.push_fpm(&mut buf, &row(9_000 - i * 1000, i as u64 + 1, true));
        }
        let back = sink.flush_fpm(&mut buf, 2, 0);
        assert_eq!(back.len(), 4);
        assert!(same(&back[0], &FpmEvent { source: 2, ..row(6_000, 4, true) }));
        let (q, warn) = sink.finish(|_, _| 0);
        assert!(q.is_none());
        assert!(warn.unwrap().contains("4 rows held in memory"));
    }
}
