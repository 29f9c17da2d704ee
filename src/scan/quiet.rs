//! Quiet rows: nginx error-log entries and FPM lines that no verdict reads, kept out of memory.
//!
//! Input: the `ErrorEvent`s the cursor builds that are neither upstream failures, nor lines a
//! request can join, nor nginx lifecycle lines (`ErrorEvent::is_quiet`), and the `FpmEvent`s
//! no rule reads (children started or exited with code 0: `FpmEvent::is_quiet`, encoded by
//! `quiet_fpm`). On a production error log (bots probing for files, client TLS and timeout
//! lines, PHP notices relayed from stderr) and FPM log they are most of the entries, and only
//! the row tables (`errors.csv`, `fpm.csv`, `events.parquet`) and a few counts need them.
//! Output: `QuietRows`, the same rows read back: merged in (time, file, line) order for the
//! writers, or in file order for one-pass counts.
//!
//! Invariants: each scan task (a plain-file chunk, a compressed file) encodes its quiet rows
//! into a buffer and appends it, sorted, as one run (or several of `RUN_BYTES`) to one
//! temporary file, unlinked as soon as it is created (even a killed run leaves nothing
//! behind); after the scan it is mapped through its handle, so the rows cost no anonymous
//! memory. Runs land in the file in whatever order the
//! threads finish, but every reader orders by the full key (time, file, line), so what it
//! yields is the same whatever the thread count. A run that cannot be written stays in memory
//! as ordinary rows (with a warning): nothing is lost. A decoded row equals the row encoded
//! (`tests::round_trip`).

use crate::model::event::ErrorRef;
use crate::model::span::Profile;
use crate::model::{ErrorEvent, Level, Ts};
use std::io::Write;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use super::quiet_rows::{decode, Run, NONE};
pub use super::quiet_rows::{Head, Kind, Merged, QuietRows};

/// Bytes of encoded rows a task holds before it writes them out as a run.
const RUN_BYTES: usize = 4 << 20;

/// One task's encoded quiet rows of one kind, not yet written.
#[derive(Default)]
pub struct Buf {
    kind: Kind,
    bytes: Vec<u8>,
    /// (time, relative line, offset, length) of each row in `bytes`.
    index: Vec<(Ts, u64, u32, u32)>,
    /// The least severe level among them.
    max_level: Option<Level>,
}

impl Buf {
    pub fn new(kind: Kind) -> Buf {
        Buf { kind, ..Buf::default() }
    }

    /// Start a row at the end of `bytes`: its length (filled by `end_row`), time and line,
    /// the fields every kind begins with. Returns where it starts.
    pub(super) fn begin_row(&mut self, ts: Ts, line: u64) -> usize {
        let b = &mut self.bytes;
        if b.capacity() == 0 {
            // Room for a whole run at once: grown by doubling, the buffer was copied and
            // faulted in anew at every step (a tenth of the 2 GiB run's page faults).
            b.reserve(RUN_BYTES + (64 << 10));
        }
        let at = b.len();
        b.extend_from_slice(&0u32.to_le_bytes());
        b.extend_from_slice(&ts.to_le_bytes());
        b.extend_from_slice(&line.to_le_bytes());
        at
    }

    pub(super) fn end_row(&mut self, at: usize, ts: Ts, line: u64) {
        let len = (self.bytes.len() - at) as u32;
        self.bytes[at..at + 4].copy_from_slice(&len.to_le_bytes());
        self.index.push((ts, line, at as u32, len));
    }

    pub(super) fn bytes(&mut self) -> &mut Vec<u8> {
        &mut self.bytes
    }

    pub fn is_empty(&self) -> bool {
        self.index.is_empty()
    }

    /// Bytes of encoded rows held.
    pub fn byte_len(&self) -> usize {
        self.bytes.len()
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
    /// Fx-hashed: looked up once per quiet row (SipHash was a tenth of `push`).
    sig_ix: rustc_hash::FxHashMap<&'static str, u16>,
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
    fpm_rows: u64,
    profile: Profile,
    max_level: Option<Level>,
}

#[derive(Clone, Copy, Debug)]
struct RunMeta {
    kind: Kind,
    src: u32,
    chunk: u32,
    off: u64,
    len: u64,
}

pub(super) fn put_str(b: &mut Vec<u8>, s: Option<&str>) {
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
        debug_assert_eq!(buf.kind, Kind::Error);
        let at = buf.begin_row(e.ts, e.line);
        let b = &mut buf.bytes;
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
        buf.end_row(at, e.ts, e.line);
        buf.max_level = Some(buf.max_level.map_or(e.level, |m| m.max(e.level)));
    }

    /// Write `buf` out as one run of rows sorted by (time, line), and empty it. When that
    /// fails, the rows come back decoded (lines relative to the chunk) for the caller to keep.
    pub fn flush(&self, buf: &mut Buf, src: u32, chunk: u32) -> Vec<ErrorEvent> {
        let mut back = Vec::new();
        if let Some(out) = self.write_run(buf, src, chunk) {
            let mut pos = 0;
            while let Some((e, next)) = decode(&out, pos, &self.sigs, src) {
                back.push(e.to_event());
                pos = next;
            }
        }
        back
    }

    /// Write `buf` out as one run sorted by (time, line), and empty it. `None` when written;
    /// else the sorted rows' bytes, for the caller to decode and keep.
    pub(super) fn write_run(&self, buf: &mut Buf, src: u32, chunk: u32) -> Option<Vec<u8>> {
        if buf.is_empty() {
            return None;
        }
        buf.index.sort_unstable_by_key(|r| (r.0, r.1));
        // The rows in their sorted order, straight from the buffer: a sorted copy of each
        // run was 4 MiB taken and given back per run, whose pages were faulted in anew each
        // time (the allocator returns freed memory within 2 ms, `alloc`). The rows now pass
        // through the file's writer under the lock: a worker writes once per 4 MiB of rows or
        // per task, so the other seldom waits for it.
        let rows = || buf.index.iter().map(|&(_, _, off, len)| &buf.bytes[off as usize..(off + len) as usize]);
        let bytes: u64 = buf.index.iter().map(|r| r.3 as u64).sum();
        // What the run adds to the totals, counted before taking the lock.
        let n = buf.index.len() as u64;
        let mut profile = Profile::default();
        for &(ts, ..) in &buf.index {
            profile.add(ts, 1);
        }
        let mut st = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let written = st.failed.is_none() && self.append(&mut st, rows()).map_err(|e| st.failed = Some(e)).is_ok();
        let out: Option<Vec<u8>> = (!written).then(|| rows().flatten().copied().collect());
        if written {
            let off = st.len;
            st.len += bytes;
            st.runs.push(RunMeta { kind: buf.kind, src, chunk, off, len: bytes });
            match buf.kind {
                Kind::Error => st.rows += n,
                Kind::Fpm => st.fpm_rows += n,
            }
            st.profile.merge(&profile);
            st.max_level = st.max_level.max(buf.max_level);
        } else {
            st.kept_in_memory += n;
        }
        drop(st);
        buf.bytes.clear();
        buf.index.clear();
        buf.max_level = None;
        out
    }

    fn append<'b>(&self, st: &mut State, mut rows: impl Iterator<Item = &'b [u8]>) -> Result<(), String> {
        if st.file.is_none() {
            static N: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
            let k = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let path = self.dir.join(format!("upcause-quiet-{}-{k}.tmp", std::process::id()));
            // Readable by this user only: the rows are log lines (client addresses, URLs).
            use std::os::unix::fs::OpenOptionsExt;
            let f = std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&path)
                .map_err(|e| format!("{}: {e}", path.display()))?;
            // Unlinked at once: the handle writes it and maps it, and a run that is killed
            // (Ctrl-C, a closed pipe) leaves nothing behind.
            let _ = std::fs::remove_file(&path);
            st.file = Some((path, std::io::BufWriter::with_capacity(1 << 20, f)));
        }
        let (path, w) = st.file.as_mut().expect("opened above");
        rows.try_for_each(|r| w.write_all(r)).map_err(|e| format!("{}: {e}", path.display()))
    }

    /// After the scan: the rows written, read back (`None` if there are none), and a
    /// warning if some could not be written. `base(src, chunk)` is the line number before
    /// the chunk's first line.
    pub fn finish(&self, base: impl Fn(u32, u32) -> u64) -> (Option<QuietRows>, Option<String>) {
        let mut st = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let st = std::mem::take(&mut *st);
        let mut warn = st.failed.as_ref().map(|e| {
            format!(
                "cannot write the temporary file of quiet rows (error-log and FPM lines no verdict reads) ({e}); {} rows held in memory instead (set TMPDIR to a writable directory)",
                st.kept_in_memory
            )
        });
        let Some((path, w)) = st.file else { return (None, warn) };
        // The file was unlinked when created: mapped through its handle.
        let mapped = w
            .into_inner()
            .map_err(|e| e.error().to_string())
            .and_then(|f| crate::open::Haystack::map_file(&f, &path.display().to_string()).map_err(|e| e.to_string()));
        match mapped {
            Ok(map) => {
                let runs = st
                    .runs
                    .iter()
                    .map(|r| Run {
                        kind: r.kind,
                        off: r.off as usize,
                        len: r.len as usize,
                        src: r.src,
                        base: base(r.src, r.chunk),
                    })
                    .collect();
                let q = QuietRows {
                    map: Arc::new(map),
                    runs,
                    sigs: self.sigs.clone(),
                    rows: st.rows,
                    fpm_rows: st.fpm_rows,
                    profile: st.profile,
                    max_level: st.max_level,
                };
                (Some(q), warn)
            }
            Err(e) => {
                warn = Some(format!(
                    "cannot read back the temporary file of quiet rows ({e}): {} rows are missing from errors.csv, fpm.csv and events.parquet",
                    st.rows + st.fpm_rows
                ));
                (None, warn)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Cause, CauseClass, Envelope, Origin, Phase, Stream};

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
            texts: crate::model::texts::Texts::new([
                Some("10.0.0.1"),
                None,
                Some(&format!("GET /x{line} HTTP/1.1")),
                None,
                Some("h é"),
                Some(""),
            ]),
            message: format!("open() \"/srv/x{line}\" failed (2: No such file or directory)").into(),
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
        // One file, unlinked from the start (a run killed now would leave nothing behind),
        // readable by this user only.
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0, "unlinked when created");
        {
            let st = sink.state.lock().unwrap();
            let (_, w) = st.file.as_ref().expect("the runs were written");
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(w.get_ref().metadata().unwrap().permissions().mode() & 0o777, 0o600);
        }
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
