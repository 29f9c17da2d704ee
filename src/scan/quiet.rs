//! Quiet rows: nginx error-log entries that no verdict reads, kept out of memory.
//!
//! Input: the `ErrorEvent`s the cursor builds that are neither upstream failures, nor lines a
//! request can join, nor nginx lifecycle lines (`ErrorEvent::is_quiet`). On a production
//! error log (bots probing for files, client TLS and timeout lines, PHP notices relayed from
//! stderr) they are most of the entries, and only the row tables (`errors.csv`,
//! `events.parquet`) and a few counts need them. Output: `QuietRows`, the same rows read back:
//! merged in (time, file, line) order for the writers, or in file order for one-pass counts.
//!
//! Invariants: each scan task (a plain-file chunk, a compressed file) encodes its quiet rows
//! into a buffer and appends it, sorted, as one run (or several of `RUN_BYTES`) to one
//! temporary file; after the scan the file is mapped and unlinked, so the rows cost no
//! anonymous memory and leave nothing behind. Runs land in the file in whatever order the
//! threads finish, but every reader orders by the full key (time, file, line), so what it
//! yields is the same whatever the thread count. A run that cannot be written stays in memory
//! as ordinary rows (with a warning): nothing is lost. A decoded row equals the row encoded
//! (`tests::round_trip`).

use crate::model::event::{ErrorRef, OriginRef};
use crate::model::span::Profile;
#[cfg(test)]
use crate::model::Origin;
use crate::model::{Cause, CauseClass, ErrorEvent, Level, Phase, Ts};
use crate::model::{Envelope, Stream};
use std::collections::{BinaryHeap, HashMap};
use std::io::Write;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

/// Bytes of encoded rows a task holds before it writes them out as a run.
const RUN_BYTES: usize = 4 << 20;
/// Absent optional string.
const NONE: u32 = u32::MAX;

/// One task's encoded quiet rows, not yet written.
#[derive(Default)]
pub struct Buf {
    bytes: Vec<u8>,
    /// (time, relative line, offset, length) of each row in `bytes`.
    index: Vec<(Ts, u64, u32, u32)>,
    /// The least severe level among them.
    max_level: Option<Level>,
}

impl Buf {
    pub fn is_empty(&self) -> bool {
        self.index.is_empty()
    }

    /// Full enough to be written out.
    pub fn full(&self) -> bool {
        self.bytes.len() >= RUN_BYTES
    }
}

/// Where quiet rows go during the scan: one temporary file shared by the workers.
pub struct Sink {
    dir: PathBuf,
    sigs: Vec<&'static str>,
    sig_ix: HashMap<&'static str, u16>,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    file: Option<(PathBuf, std::io::BufWriter<std::fs::File>)>,
    len: u64,
    runs: Vec<RunMeta>,
    /// The first write error; later runs stay in memory without trying.
    failed: Option<String>,
    kept_in_memory: u64,
    rows: u64,
    profile: Profile,
    max_level: Option<Level>,
}

#[derive(Clone, Copy, Debug)]
struct RunMeta {
    src: u32,
    chunk: u32,
    off: u64,
    len: u64,
}

fn put_str(b: &mut Vec<u8>, s: Option<&str>) {
    match s {
        Some(s) => {
            b.extend_from_slice(&(s.len() as u32).to_le_bytes());
            b.extend_from_slice(s.as_bytes());
        }
        None => b.extend_from_slice(&NONE.to_le_bytes()),
    }
}

impl Sink {
    /// A sink writing into `dir` (created on the first run), naming signatures by their
    /// position in `sigs` (every signature the classifier can give).
    pub fn new(dir: PathBuf, sigs: Vec<&'static str>) -> Sink {
        let sig_ix = sigs.iter().enumerate().map(|(i, s)| (*s, i as u16)).collect();
        Sink { dir, sigs, sig_ix, state: Mutex::new(State::default()) }
    }

    /// Encode `e` (line relative to its chunk) into `buf`. Layout (little-endian): length
    /// u32 @0, time i64 @4, line u64 @12, cause, class, level, phase u8 @20..24, entry lines
    /// u32 @24, pid u32 @28, flags u8 @32, conn u64 @33, errno i32 @41, signature u16 @45,
    /// then the strings (u32 length or `NONE`, bytes) and the envelope.
    pub fn push(&self, buf: &mut Buf, e: &ErrorRef) {
        let b = &mut buf.bytes;
        let at = b.len();
        b.extend_from_slice(&0u32.to_le_bytes());
        b.extend_from_slice(&e.ts.to_le_bytes());
        b.extend_from_slice(&e.line.to_le_bytes());
        b.extend_from_slice(&[e.cause as u8, e.class as u8, e.level as u8, e.phase as u8]);
        b.extend_from_slice(&e.lines.to_le_bytes());
        b.extend_from_slice(&e.pid.to_le_bytes());
        let flags = e.conn.is_some() as u8
            | (e.errno.is_some() as u8) << 1
            | (e.failure as u8) << 2
            | (e.origin.is_some() as u8) << 3;
        b.push(flags);
        b.extend_from_slice(&e.conn.unwrap_or(0).to_le_bytes());
        b.extend_from_slice(&e.errno.unwrap_or(0).to_le_bytes());
        // A signature outside the table cannot happen (the classifier gives only these);
        // `u16::MAX` would read back as "other".
        b.extend_from_slice(&self.sig_ix.get(e.signature).copied().unwrap_or(u16::MAX).to_le_bytes());
        for s in [e.client, e.server, e.request, e.upstream, e.host, e.referrer] {
            put_str(b, s);
        }
        put_str(b, Some(e.message));
        if let Some(o) = &e.origin {
            b.push(o.envelope as u8);
            put_str(b, o.name);
            b.push(o.stream.map_or(u8::MAX, |s| s as u8));
            put_str(b, o.host);
        }
        let len = (b.len() - at) as u32;
        b[at..at + 4].copy_from_slice(&len.to_le_bytes());
        buf.index.push((e.ts, e.line, at as u32, len));
        buf.max_level = Some(buf.max_level.map_or(e.level, |m| m.max(e.level)));
    }

    /// Write `buf` out as one run of rows sorted by (time, line), and empty it. When that
    /// fails, the rows come back decoded (lines relative to the chunk) for the caller to keep.
    pub fn flush(&self, buf: &mut Buf, src: u32, chunk: u32) -> Vec<ErrorEvent> {
        if buf.is_empty() {
            return Vec::new();
        }
        buf.index.sort_unstable_by_key(|r| (r.0, r.1));
        let mut out = Vec::with_capacity(buf.bytes.len());
        for &(_, _, off, len) in &buf.index {
            out.extend_from_slice(&buf.bytes[off as usize..(off + len) as usize]);
        }
        // What the run adds to the totals, counted before taking the lock.
        let n = buf.index.len() as u64;
        let mut profile = Profile::default();
        for &(ts, ..) in &buf.index {
            profile.add(ts, 1);
        }
        let mut st = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let written = st.failed.is_none() && self.append(&mut st, &out).map_err(|e| st.failed = Some(e)).is_ok();
        let mut back = Vec::new();
        if written {
            let off = st.len;
            st.len += out.len() as u64;
            st.runs.push(RunMeta { src, chunk, off, len: out.len() as u64 });
            st.rows += n;
            st.profile.merge(&profile);
            st.max_level = st.max_level.max(buf.max_level);
        } else {
            st.kept_in_memory += n;
            drop(st);
            let mut pos = 0;
            while let Some((e, next)) = decode(&out, pos, &self.sigs, src) {
                back.push(e.to_event());
                pos = next;
            }
        }
        buf.bytes.clear();
        buf.index.clear();
        buf.max_level = None;
        back
    }

    fn append(&self, st: &mut State, bytes: &[u8]) -> Result<(), String> {
        if st.file.is_none() {
            static N: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
            let k = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let path = self.dir.join(format!("upcause-quiet-{}-{k}.tmp", std::process::id()));
            // Readable by this user only: the rows are log lines (client addresses, URLs).
            use std::os::unix::fs::OpenOptionsExt;
            let f = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&path)
                .map_err(|e| format!("{}: {e}", path.display()))?;
            st.file = Some((path, std::io::BufWriter::with_capacity(1 << 20, f)));
        }
        let (path, w) = st.file.as_mut().expect("opened above");
        w.write_all(bytes).map_err(|e| format!("{}: {e}", path.display()))
    }

    /// After the scan: the rows written, read back (`None` if there are none), and a
    /// warning if some could not be written. `base(src, chunk)` is the line number before
    /// the chunk's first line.
    pub fn finish(&self, base: impl Fn(u32, u32) -> u64) -> (Option<QuietRows>, Option<String>) {
        let mut st = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let st = std::mem::take(&mut *st);
        let mut warn = st.failed.as_ref().map(|e| {
            format!(
                "cannot write the temporary file of quiet error-log rows ({e}); {} rows held in memory instead (set TMPDIR to a writable directory)",
                st.kept_in_memory
            )
        });
        let Some((path, w)) = st.file else { return (None, warn) };
        let mapped = w.into_inner().map_err(|e| e.error().to_string()).and_then(|_| {
            crate::open::Haystack::map_path(&path, &path.display().to_string()).map_err(|e| e.to_string())
        });
        // Unlinked at once: the mapping keeps the bytes readable, and nothing is left behind.
        let _ = std::fs::remove_file(&path);
        match mapped {
            Ok(map) => {
                let runs = st
                    .runs
                    .iter()
                    .map(|r| Run { off: r.off as usize, len: r.len as usize, src: r.src, base: base(r.src, r.chunk) })
                    .collect();
                let q = QuietRows {
                    map: Arc::new(map),
                    runs,
                    sigs: self.sigs.clone(),
                    rows: st.rows,
                    profile: st.profile,
                    max_level: st.max_level,
                };
                (Some(q), warn)
            }
            Err(e) => {
                warn = Some(format!(
                    "cannot read back the temporary file of quiet error-log rows ({e}): {} rows are missing from errors.csv and events.parquet",
                    st.rows
                ));
                (None, warn)
            }
        }
    }
}

/// One run of the temporary file, with the line number its chunk starts after.
#[derive(Clone, Copy, Debug)]
struct Run {
    off: usize,
    len: usize,
    src: u32,
    base: u64,
}

/// The quiet rows of a scan, read back from the (unlinked) temporary file.
#[derive(Clone)]
pub struct QuietRows {
    map: Arc<crate::open::Haystack>,
    runs: Vec<Run>,
    sigs: Vec<&'static str>,
    /// How many rows.
    pub rows: u64,
    /// Their stamps, hour by hour (`model::span`).
    pub profile: Profile,
    /// The least severe level among them (`correlate::evidence::ErrorCoverage`).
    pub max_level: Option<Level>,
}

/// The fields of a row readable without decoding it: time, line, cause, where it is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Head {
    pub ts: Ts,
    pub src: u32,
    pub line: u64,
    pub cause: Cause,
    /// (run, offset in the run) for `QuietRows::get`.
    pub at: (u32, u32),
}

fn rd<const N: usize>(b: &[u8], p: usize) -> Option<[u8; N]> {
    b.get(p..p + N)?.try_into().ok()
}

/// Time, relative line and cause of the row at `pos`, and where the next starts.
fn decode_head(b: &[u8], pos: usize) -> Option<((Ts, u64, Cause), usize)> {
    let len = u32::from_le_bytes(rd(b, pos)?) as usize;
    let ts = i64::from_le_bytes(rd(b, pos + 4)?);
    let line = u64::from_le_bytes(rd(b, pos + 12)?);
    let cause = *Cause::ALL.get(*b.get(pos + 20)? as usize)?;
    (len > 0).then_some(((ts, line, cause), pos + len))
}

/// The row at `pos` (line relative to its chunk), borrowed, and where the next starts.
fn decode<'b>(b: &'b [u8], pos: usize, sigs: &[&'static str], src: u32) -> Option<(ErrorRef<'b>, usize)> {
    let len = u32::from_le_bytes(rd(b, pos)?) as usize;
    let r = b.get(pos..pos + len)?;
    let u32_at = |p: usize| rd(r, p).map(u32::from_le_bytes);
    // Strings were written from `String`s: they are UTF-8 (checked all the same).
    let string = |p: &mut usize| -> Option<Option<&'b str>> {
        let n = u32::from_le_bytes(rd(r, *p)?);
        *p += 4;
        if n == NONE {
            return Some(None);
        }
        let s = r.get(*p..*p + n as usize)?;
        *p += n as usize;
        std::str::from_utf8(s).ok().map(Some)
    };
    let mut p = 47;
    let (client, server, request) = (string(&mut p)?, string(&mut p)?, string(&mut p)?);
    let (upstream, host, referrer) = (string(&mut p)?, string(&mut p)?, string(&mut p)?);
    let message = string(&mut p)?.unwrap_or_default();
    let flags = *r.get(32)?;
    let origin = if flags & 8 != 0 {
        let envelope = *Envelope::ALL.get(*r.get(p)? as usize)?;
        p += 1;
        let name = string(&mut p)?;
        let stream = Stream::ALL.get(*r.get(p)? as usize).copied();
        p += 1;
        let host = string(&mut p)?;
        Some(OriginRef { envelope, name, stream, host })
    } else {
        None
    };
    let sig = u16::from_le_bytes(rd(r, 45)?);
    let e = ErrorRef {
        ts: i64::from_le_bytes(rd(r, 4)?),
        source: src,
        line: u64::from_le_bytes(rd(r, 12)?),
        lines: u32_at(24)?,
        level: *Level::ALL.get(*r.get(22)? as usize)?,
        pid: u32_at(28)?,
        conn: (flags & 1 != 0).then(|| rd(r, 33).map(u64::from_le_bytes)).flatten(),
        signature: sigs.get(sig as usize).copied().unwrap_or("other"),
        errno: (flags & 2 != 0).then(|| rd(r, 41).map(i32::from_le_bytes)).flatten(),
        phase: *Phase::ALL.get(*r.get(23)? as usize)?,
        class: *CauseClass::ALL.get(*r.get(21)? as usize)?,
        cause: *Cause::ALL.get(*r.get(20)? as usize)?,
        failure: flags & 4 != 0,
        client,
        server,
        request,
        upstream,
        host,
        referrer,
        message,
        origin,
    };
    Some((e, pos + len))
}

impl QuietRows {
    fn bytes(&self, r: &Run) -> &[u8] {
        self.map.mapped().and_then(|m| m.get(r.off..r.off + r.len)).unwrap_or(&[])
    }

    /// Every row's head, run by run (not in time order).
    pub fn heads(&self) -> impl Iterator<Item = Head> + '_ {
        self.runs.iter().enumerate().flat_map(move |(k, r)| {
            let b = self.bytes(r);
            let mut pos = 0;
            std::iter::from_fn(move || {
                let ((ts, line, cause), next) = decode_head(b, pos)?;
                let at = (k as u32, pos as u32);
                pos = next;
                Some(Head { ts, src: r.src, line: line + r.base, cause, at })
            })
        })
    }

    /// The row a head names.
    pub fn get(&self, at: (u32, u32)) -> Option<ErrorRef<'_>> {
        let r = self.runs.get(at.0 as usize)?;
        let (mut e, _) = decode(self.bytes(r), at.1 as usize, &self.sigs, r.src)?;
        e.line += r.base;
        Some(e)
    }

    /// Every row in (time, `rank[source]`, line) order: a k-way merge of the sorted runs.
    pub fn merged<'q>(&'q self, rank: &'q [u32]) -> Merged<'q> {
        let mut m = Merged { q: self, rank, pos: vec![0; self.runs.len()], heap: BinaryHeap::new() };
        for k in 0..self.runs.len() {
            m.push(k);
        }
        m
    }

    /// Every row in (time, source, line) order, owned (tests and fuzzing compare reads).
    pub fn all(&self) -> Vec<ErrorEvent> {
        let rank: Vec<u32> = (0..self.runs.iter().map(|r| r.src + 1).max().unwrap_or(0)).collect();
        self.merged(&rank).map(|e| e.to_event()).collect()
    }
}

/// Rows of `QuietRows::merged`, in order.
pub struct Merged<'q> {
    q: &'q QuietRows,
    rank: &'q [u32],
    pos: Vec<usize>,
    /// Smallest next row of each run: (time, file rank, line, run).
    heap: BinaryHeap<std::cmp::Reverse<(Ts, u32, u64, usize)>>,
}

impl Merged<'_> {
    fn push(&mut self, k: usize) {
        let r = &self.q.runs[k];
        if let Some(((ts, line, ..), _)) = decode_head(self.q.bytes(r), self.pos[k]) {
            let rank = self.rank.get(r.src as usize).copied().unwrap_or(u32::MAX);
            self.heap.push(std::cmp::Reverse((ts, rank, line + r.base, k)));
        }
    }
}

impl<'q> Iterator for Merged<'q> {
    type Item = ErrorRef<'q>;

    fn next(&mut self) -> Option<ErrorRef<'q>> {
        let std::cmp::Reverse((.., k)) = self.heap.pop()?;
        let r = self.q.runs[k];
        let (mut e, next) = decode(self.q.bytes(&r), self.pos[k], &self.q.sigs, r.src)?;
        e.line += r.base;
        self.pos[k] = next;
        self.push(k);
        Some(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(ts: Ts, line: u64, origin: bool) -> ErrorEvent {
        ErrorEvent {
            ts,
            source: 0,
            line,
            lines: 2,
            level: Level::Warn,
            pid: 7,
            conn: (line % 2 == 0).then_some(line * 3),
            signature: "static_open_failed",
            errno: (line % 3 == 0).then_some(2),
            phase: Phase::SslHandshakingClient,
            class: CauseClass::Info,
            cause: Cause::Info,
            failure: false,
            client: Some("10.0.0.1".into()),
            server: None,
            request: Some(format!("GET /x{line} HTTP/1.1")),
            upstream: None,
            host: Some("h é".into()),
            referrer: Some(String::new()),
            message: format!("open() \"/srv/x{line}\" failed (2: No such file or directory)"),
            origin: origin.then(|| {
                Arc::new(Origin {
                    envelope: Envelope::Cri,
                    name: Some("web".into()),
                    stream: Some(Stream::Stderr),
                    host: None,
                })
            }),
        }
    }

    fn same(a: &ErrorEvent, b: &ErrorEvent) -> bool {
        format!("{a:?}") == format!("{b:?}")
    }

    /// Rows written in several runs by two "tasks" come back equal, with absolute lines, in
    /// (time, file rank, line) order; and the heads name them.
    #[test]
    fn round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let sink = Sink::new(dir.path().to_path_buf(), vec!["other", "static_open_failed"]);
        let mut want = Vec::new();
        for (src, chunk, base) in [(1u32, 0u32, 0u64), (0, 1, 1000), (0, 0, 0)] {
            let mut buf = Buf::default();
            for i in (0..50u64).rev() {
                let mut e = row(1_000 + (i as i64 % 7) * 1000, i + 1, i % 4 == 0);
                sink.push(&mut buf, &e.view());
                e.source = src;
                e.line += base;
                want.push(e);
            }
            assert!(sink.flush(&mut buf, src, chunk).is_empty());
        }
        // One file, readable by this user only.
        let files: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().path()).collect();
        assert_eq!(files.len(), 1);
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&files[0]).unwrap().permissions().mode() & 0o777, 0o600);
        let base = |src: u32, chunk: u32| if (src, chunk) == (0, 1) { 1000 } else { 0 };
        let (q, warn) = sink.finish(base);
        assert!(warn.is_none());
        let q = q.unwrap();
        assert_eq!(q.rows, 150);
        assert_eq!(q.max_level, Some(Level::Warn));
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0, "the file is unlinked");
        // File rank: source 1 sorts before source 0.
        let got: Vec<ErrorEvent> = q.merged(&[1, 0]).map(|e| e.to_event()).collect();
        want.sort_by_key(|e| (e.ts, [1, 0][e.source as usize], e.line));
        assert_eq!(got.len(), want.len());
        for (g, w) in got.iter().zip(&want) {
            assert!(same(g, w), "{g:?}\n{w:?}");
        }
        let heads: Vec<Head> = q.heads().collect();
        assert_eq!(heads.len(), 150);
        for h in heads.iter().step_by(17) {
            let e = q.get(h.at).unwrap();
            assert_eq!((e.ts, e.source, e.line, e.cause), (h.ts, h.src, h.line, h.cause));
        }
    }

    /// A directory that cannot be written: the rows come back to be kept in memory, with a
    /// warning that says so.
    #[test]
    fn unwritable_dir_keeps_rows_in_memory() {
        let sink = Sink::new(PathBuf::from("/nonexistent/upcause"), vec!["static_open_failed"]);
        let mut buf = Buf::default();
        for i in 0..5 {
            sink.push(&mut buf, &row(5_000 - i * 1000, i as u64 + 1, true).view());
        }
        let back = sink.flush(&mut buf, 3, 0);
        assert_eq!(back.len(), 5);
        assert!(back.windows(2).all(|w| w[0].ts <= w[1].ts));
        assert!(same(&back[0], &ErrorEvent { source: 3, ..row(1_000, 5, true) }));
        let (q, warn) = sink.finish(|_, _| 0);
        assert!(q.is_none());
        assert!(warn.unwrap().contains("5 rows held in memory"));
    }
}
