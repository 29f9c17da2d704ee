//! The parallel scan: every input's bytes through the parsers into counts and events.
//!
//! Input: discovered sources, compiled formats, the classifier, the zone and the time
//! window. Output: `ScanOutput`: per-file accounting, the event rows (sorted), the traffic
//! counters and diagnostics. Invariants: work units are plain-file chunks (in parallel
//! within a file) and whole compressed files (decoded as streams, several files at once); each
//! rayon worker folds into its own `Partial`, partials are merged by addition and
//! concatenation (no locks on the hot path); line numbers are fixed up from per-chunk
//! counts after the merge and every event list is sorted by (time, file, line), so the
//! result is identical whatever the thread count.

mod coverage;
mod cursor;
pub mod framing;
pub mod layout;
mod mixed;
pub mod quiet;
pub mod quiet_fpm;
mod quiet_rows;
mod records;
pub mod series;
mod slots;
pub mod traffic;

use crate::classify::Classifier;
use crate::model::span::{HourCell, Profile};
use crate::model::{Diagnostic, ErrorEvent, FileStats, FpmEvent, LogSource, RequestEvent, Sample, Severity, Ts, Zone};
use crate::open::{stream, Haystack};
use crate::parse::access::AccessFormat;
pub use coverage::{KindRanges, OffsetSeen};
use cursor::Cursor;
use std::collections::{BTreeMap, HashMap};
use traffic::Traffic;

/// Stamped lines per hour (`model::span`) and where the first of each hour is (`L`).
pub type HourCells<L> = BTreeMap<i64, (HourCell, L)>;

/// Everything the workers read but never write.
pub struct ScanCtx<'a> {
    pub sources: &'a [LogSource],
    pub formats: &'a [AccessFormat],
    pub classifier: &'a Classifier,
    pub zone: &'a Zone,
    pub since: Option<Ts>,
    pub until: Option<Ts>,
    /// Called with input bytes done (compressed bytes for compressed files).
    pub progress: &'a (dyn Fn(u64) + Sync),
    pub chunk_size: usize,
    /// Where quiet error-log rows go (`quiet`); `None` keeps them in memory with the rest.
    pub quiet: Option<&'a quiet::Sink>,
    /// How far the FPM logs' clock runs ahead of nginx's (ms, `correlate::skew`): taken off
    /// every zone-less FPM stamp (master and slow log), so the joins see one clock.
    pub fpm_clock_ms: i64,
}

/// One worker's accumulation.
#[derive(Default)]
pub struct Partial {
    stats: Vec<FileStats>,
    /// (source, chunk, lines in chunk).
    chunk_lines: Vec<(u32, u32, u64)>,
    errors: Vec<(u32, ErrorEvent)>,
    fpm: Vec<(u32, FpmEvent)>,
    requests: Vec<(u32, RequestEvent)>,
    samples: Vec<(u32, u32, Sample)>,
    traffic: Traffic,
    diags: Vec<Diagnostic>,
    /// Access-log UTC offsets seen (seconds east): how often, and when.
    offsets: BTreeMap<i32, OffsetSeen>,
    /// Per source: stamped lines per hour, with the (chunk, relative line) of the first.
    stamps: Vec<HourCells<(u32, u64)>>,
    /// Per source: the time ranges of its nginx error and FPM records.
    kind_ranges: Vec<KindRanges>,
    /// Zone-less stamps that fell in a repeated hour / a skipped hour.
    wall_fits: [u64; 2],
    /// The held rows' long texts, shared within this fold (dropped at the merge: no row is
    /// made after it).
    pub(super) intern: crate::model::texts::Interner,
    /// The quiet-row buffers (error-log, FPM) of this worker's last task, emptied, for its
    /// next: a buffer per task was a run's worth of fresh memory faulted in per task.
    pub(super) quiet_bufs: Option<(quiet::Buf, quiet::Buf)>,
}

impl Partial {
    fn new(n: usize) -> Partial {
        Partial {
            stats: vec![FileStats::default(); n],
            stamps: vec![BTreeMap::new(); n],
            kind_ranges: vec![KindRanges::default(); n],
            ..Default::default()
        }
    }

    fn merge(mut self, o: Partial) -> Partial {
        for (a, b) in self.stats.iter_mut().zip(&o.stats) {
            a.add(b);
        }
        self.chunk_lines.extend(o.chunk_lines);
        self.errors.extend(o.errors);
        self.fpm.extend(o.fpm);
        self.requests.extend(o.requests);
        self.samples.extend(o.samples);
        self.traffic.merge(o.traffic);
        self.diags.extend(o.diags);
        for (k, v) in o.offsets {
            self.offsets.entry(k).or_insert(OffsetSeen { lines: 0, ..v }).add(&v);
        }
        for (a, b) in self.kind_ranges.iter_mut().zip(o.kind_ranges) {
            a.merge(&b);
        }
        for (a, b) in self.stamps.iter_mut().zip(o.stamps) {
            for (h, (c, first)) in b {
                a.entry(h)
                    .and_modify(|(x, f)| {
                        x.add(&c);
                        *f = (*f).min(first);
                    })
                    .or_insert((c, first));
            }
        }
        self.wall_fits[0] += o.wall_fits[0];
        self.wall_fits[1] += o.wall_fits[1];
        self
    }
}

/// The merged, ordered result of a scan.
pub struct ScanOutput {
    pub stats: Vec<FileStats>,
    pub errors: Vec<ErrorEvent>,
    pub fpm: Vec<FpmEvent>,
    pub requests: Vec<RequestEvent>,
    pub traffic: Traffic,
    pub diags: Vec<Diagnostic>,
    pub offsets: BTreeMap<i32, OffsetSeen>,
    /// Per source: first and last instant of a parsed line.
    pub ranges: Vec<Option<(Ts, Ts)>>,
    /// Per source: stamped lines per hour, with the line number of the first.
    pub stamps: Vec<HourCells<u64>>,
    /// Per source: the time ranges of its nginx error and FPM records (a mixed file holds
    /// both; correlation asks whether those logs cover a moment).
    pub kind_ranges: Vec<KindRanges>,
    pub ambiguous_stamps: u64,
    pub gap_stamps: u64,
    /// The error-log and FPM rows no verdict reads, out of memory (`quiet`, `quiet_fpm`);
    /// `errors` and `fpm` hold the rest.
    pub quiet: Option<quiet::QuietRows>,
}

enum Task {
    Plain { src: u32, chunk: u32, range: std::ops::Range<u64> },
    Compressed { src: u32 },
}

pub fn scan(ctx: &ScanCtx) -> ScanOutput {
    let t = std::time::Instant::now();
    let n = ctx.sources.len();
    let mut diags = Vec::new();
    let mut hay: Vec<Option<Haystack>> = Vec::with_capacity(n);
    let mut tasks = Vec::new();
    let mut gz_tasks = Vec::new();
    for s in ctx.sources {
        let opened = match s.compression {
            crate::model::Compression::Plain => Haystack::open(s),
            // Compressed files are never appended to: mapped whatever their place.
            _ => Haystack::map_path(&s.path, &s.display),
        };
        match opened {
            Ok(h) => {
                // Truncated between the listing and the opening (logrotate's copytruncate on
                // the live file): the lines past the new end are lost as surely as when it
                // happens during the read, and said so the same way.
                if h.len() < s.size {
                    diags.push(Diagnostic {
                        severity: Severity::Warning,
                        file: s.display.clone(),
                        line: None,
                        offset: Some(h.len()),
                        message: format!(
                            "{SHRANK} (truncated by logrotate copytruncate?): {} bytes when listed, {} when opened; what was past that was not read",
                            s.size,
                            h.len()
                        ),
                    });
                }
                if s.compression != crate::model::Compression::Plain {
                    gz_tasks.push((h.len(), Task::Compressed { src: s.id }));
                } else {
                    let framing = framing::Framing::new(s, ctx.formats);
                    match h.plan_chunks(ctx.chunk_size.max(1 << 12), &|p, l| framing.is_start(p, l)) {
                        Ok(ranges) => {
                            for (i, r) in ranges.into_iter().enumerate() {
                                tasks.push(Task::Plain { src: s.id, chunk: i as u32, range: r });
                            }
                        }
                        Err(e) => diags.push(Diagnostic {
                            severity: Severity::Error,
                            file: s.display.clone(),
                            line: None,
                            offset: None,
                            message: format!("cannot read: {e}"),
                        }),
                    }
                }
                hay.push(Some(h));
            }
            Err(e) => {
                diags.push(Diagnostic {
                    severity: Severity::Error,
                    file: s.display.clone(),
                    line: None,
                    offset: None,
                    message: e.to_string(),
                });
                hay.push(None);
            }
        }
    }
    // Long compressed streams first, so a big file does not start last and run alone.
    gz_tasks.sort_by_key(|t| std::cmp::Reverse(t.0));
    let mut all: Vec<Task> = gz_tasks.into_iter().map(|t| t.1).collect();
    all.extend(tasks);
    // Opening the files and finding the chunks' line boundaries (a read at each boundary of
    // a plain file: from the disk when it is not cached).
    crate::timings::timing("scan: plan", t);

    let t = std::time::Instant::now();
    // Every worker takes the next task from one queue, in the order above: the long
    // compressed streams start first and the plain chunks fill in around them, so the workers
    // end within a chunk of each other. (A parallel iterator over the tasks splits the list
    // into halves, the compressed streams mostly in one: on the noisy 2 GiB corpus one thread
    // was left inflating the last of them alone for about 0.1 s.) Which worker ran a task
    // does not show in the output: the partial results merge in any order (`finish` sorts).
    let next = std::sync::atomic::AtomicUsize::new(0);
    // Each task's counters join the run's as it ends: a worker's own came to cover the whole
    // span (a copy per worker to the merge: 8 GiB, 2 threads, 195 -> 183 MiB at the scan's
    // end). Sums, minima and maxima: the order the tasks end in does not show.
    let traffic = std::sync::Mutex::new(Traffic::default());
    let parts = rayon::broadcast(|_| {
        let mut part = Partial::new(n);
        while let Some(task) = all.get(next.fetch_add(1, std::sync::atomic::Ordering::Relaxed)) {
            run_task(ctx, &hay, task, &mut part);
            let done = std::mem::take(&mut part.traffic);
            traffic.lock().unwrap_or_else(|e| e.into_inner()).merge(done);
        }
        part
    });
    let traffic = traffic.into_inner().unwrap_or_else(|e| e.into_inner());
    crate::timings::timing("scan (parallel part)", t);
    rayon::broadcast(|_| BUF.with_borrow_mut(std::mem::take));
    // The files are unmapped (the kernel's page-table work, about 0.02 s a GiB) while the
    // workers' results are merged.
    let (out, ()) = rayon::join(
        || {
            let t = std::time::Instant::now();
            let out = finish(parts, traffic, diags, ctx);
            crate::timings::timing("scan: merge", t);
            out
        },
        || {
            let t = std::time::Instant::now();
            drop(hay);
            crate::timings::timing("scan: unmap", t);
        },
    );
    out
}

const SHRANK: &str = "file shrank while it was read";

/// One plain-file chunk.
fn plain_task(
    ctx: &ScanCtx,
    h: &Haystack,
    part: &mut Partial,
    src: u32,
    chunk: u32,
    range: &std::ops::Range<u64>,
    buf: &mut Vec<u8>,
) {
    let mut cur = Cursor::new(ctx, part, src, chunk);
    match h.read(range.clone(), buf) {
        Ok(bytes) => {
            let short = (bytes.len() as u64) < range.end - range.start;
            cur.feed(bytes);
            if short {
                cur.diag(
                    Severity::Warning,
                    Some(range.start + bytes.len() as u64),
                    format!("{SHRANK} (truncated by logrotate copytruncate?); lines after this offset were not read"),
                );
            }
        }
        Err(e) => cur.diag(Severity::Error, Some(range.start), format!("read failed: {e}")),
    }
    cur.finish();
    (ctx.progress)(range.end - range.start);
}

thread_local! {
    /// Read buffer of live (not mapped) files, one per worker, reused; emptied after the
    /// scan (a chunk each, 16 MiB on two threads, was held to the end of the run).
    static BUF: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

fn run_task(ctx: &ScanCtx, hay: &[Option<Haystack>], task: &Task, part: &mut Partial) {
    match task {
        Task::Plain { src, chunk, range } => {
            let Some(h) = &hay[*src as usize] else { return };
            BUF.with_borrow_mut(|buf| plain_task(ctx, h, part, *src, *chunk, range, buf));
        }
        Task::Compressed { src } => {
            let Some(h) = &hay[*src as usize] else { return };
            let data = h.mapped().unwrap_or(&[]);
            let framing = framing::Framing::new(&ctx.sources[*src as usize], ctx.formats);
            let mut cur = Cursor::new(ctx, part, *src, 0);
            let report = stream::decode_blocks(
                ctx.sources[*src as usize].compression,
                data,
                1 << 20,
                framing.multiline(),
                &|p, l| framing.is_start(p, l),
                &mut |b: &[u8]| cur.feed(b),
                &mut |d| (ctx.progress)(d),
            );
            for p in report.problems {
                let sev = match p.kind {
                    stream::ProblemKind::TrailingData => Severity::Warning,
                    _ => Severity::Error,
                };
                cur.diag(sev, Some(p.offset), p.message);
            }
            cur.finish();
        }
    }
}

/// The workers' lists of one kind of row, mapped into one vector of exactly their number,
/// each list freed once moved. The rows are held to the report stage, and the doubling that
/// gathered them left a third of each vector empty (8 GiB bench corpus: 160,720 error rows in
/// room for 258,960). That room was never resident; what this saves is copies: merging the
/// workers' results first grew one worker's vectors to hold both and the exact copy came after
/// (three copies of the rows at once where this holds the output and one list; the 8 GiB peak
/// at the scan's end 207-220 -> 188-193 MiB). A collect would reuse a gathering vector in
/// place, and `shrink_to_fit` leaves it too (mimalloc keeps a block reallocated to more than
/// half its size where it is).
fn exact<T, E>(lists: Vec<Vec<T>>, mut f: impl FnMut(T) -> E) -> Vec<E> {
    let mut out = Vec::with_capacity(lists.iter().map(Vec::len).sum());
    for rows in lists {
        out.extend(rows.into_iter().map(&mut f));
    }
    out
}

fn finish(mut parts: Vec<Partial>, traffic: Traffic, mut diags: Vec<Diagnostic>, ctx: &ScanCtx) -> ScanOutput {
    for p in &mut parts {
        p.quiet_bufs = None;
    }
    let errors = parts.iter_mut().map(|p| std::mem::take(&mut p.errors)).collect();
    let fpm = parts.iter_mut().map(|p| std::mem::take(&mut p.fpm)).collect();
    let requests = parts.iter_mut().map(|p| std::mem::take(&mut p.requests)).collect();
    let n = ctx.sources.len();
    let part = parts.into_iter().reduce(Partial::merge).unwrap_or_else(|| Partial::new(n));
    // Line offset of each chunk: lines of the chunks before it in the same file.
    let mut counts: Vec<(u32, u32, u64)> = part.chunk_lines;
    counts.sort_unstable();
    let mut base: HashMap<(u32, u32), u64> = HashMap::with_capacity(counts.len());
    let mut acc: HashMap<u32, u64> = HashMap::new();
    for (src, chunk, lines) in counts {
        let a = acc.entry(src).or_insert(0);
        base.insert((src, chunk), *a);
        *a += lines;
    }
    let fix = |src: u32, chunk: u32, line: u64| line + base.get(&(src, chunk)).copied().unwrap_or(0);

    let mut errors: Vec<ErrorEvent> = exact(errors, |(c, mut e)| {
        e.line = fix(e.source, c, e.line);
        e
    });
    errors.sort_by_key(|e| (e.ts, e.source, e.line));
    let mut fpm: Vec<FpmEvent> = exact(fpm, |(c, mut e)| {
        e.line = fix(e.source, c, e.line);
        e
    });
    fpm.sort_by_key(|e| (e.ts, e.source, e.line));
    let mut requests: Vec<RequestEvent> = exact(requests, |(c, mut e)| {
        e.line = fix(e.source, c, e.line);
        e
    });
    requests.sort_by_key(|e| (e.ts, e.source, e.line));

    let mut stats = part.stats;
    for s in stats.iter_mut() {
        s.malformed_samples.clear();
    }
    let mut samples: Vec<(u32, Sample)> = part
        .samples
        .into_iter()
        .map(|(src, c, mut s)| {
            s.line = fix(src, c, s.line);
            (src, s)
        })
        .collect();
    samples.sort_by_key(|s| (s.0, s.1.line));
    for (src, s) in samples {
        let st = &mut stats[src as usize];
        if st.malformed_samples.len() < crate::model::source::MAX_SAMPLES {
            st.malformed_samples.push(s);
        }
    }
    let mut pd = part.diags;
    pd.sort_by(|a, b| (&a.file, a.offset, &a.message).cmp(&(&b.file, b.offset, &b.message)));
    // A file truncated under the reader makes every later chunk come up short: one
    // diagnostic per file, at the first offset where it ran out.
    pd.dedup_by(|b, a| a.file == b.file && a.message == b.message && a.message.starts_with(SHRANK));
    diags.extend(pd);
    for (i, st) in stats.iter().enumerate() {
        let s = &ctx.sources[i];
        if st.prefix_fit > 0 {
            let name = s.format.and_then(|f| ctx.formats.get(f)).map_or("?", |f| f.name.as_str());
            diags.push(Diagnostic {
                severity: Severity::Warning,
                file: s.display.clone(),
                line: None,
                offset: None,
                message: format!(
                    "{} lines fit `{name}` with {} more fields after its end, which are not read; pass --log-format or --nginx-conf to use them",
                    st.prefix_fit, s.extra_fields
                ),
            });
        }
        if let Some((y, m, from)) = s.year_ref {
            diags.push(Diagnostic {
                severity: Severity::Warning,
                file: s.display.clone(),
                line: None,
                offset: None,
                message: format!(
                    "syslog stamps carry no year: read as {y}-{m:02} and the six months either side of it (the year from {from})"
                ),
            });
        }
        if st.malformed > 0 {
            let first = st.malformed_samples.first().map(|x| x.line);
            diags.push(Diagnostic {
                severity: Severity::Warning,
                file: s.display.clone(),
                line: first,
                offset: None,
                message: format!(
                    "{} of {} lines malformed for kind {}{}",
                    st.malformed,
                    st.lines,
                    s.kind,
                    s.format
                        .and_then(|f| ctx.formats.get(f))
                        .map(|f| format!(" (log_format {})", f.name))
                        .unwrap_or_default()
                ),
            });
        }
    }
    let stamps: Vec<HourCells<u64>> = part
        .stamps
        .into_iter()
        .enumerate()
        .map(|(src, m)| m.into_iter().map(|(h, (c, (chunk, line)))| (h, (c, fix(src as u32, chunk, line)))).collect())
        .collect();
    let ranges = stamps.iter().map(|m| Some((m.first_key_value()?.1 .0.min, m.last_key_value()?.1 .0.max))).collect();
    // (The workers' own counters are empty: each task's went into `traffic` as it ended.)
    let mut traffic = traffic;
    traffic.merge(part.traffic);
    traffic.finish();
    let (quiet, warn) = ctx.quiet.map_or((None, None), |q| q.finish(|src, chunk| fix(src, chunk, 0)));
    if let Some(message) = warn {
        diags.push(Diagnostic {
            severity: Severity::Warning,
            file: "(temporary file)".into(),
            line: None,
            offset: None,
            message,
        });
    }
    ScanOutput {
        stats,
        errors,
        fpm,
        requests,
        traffic,
        diags,
        offsets: part.offsets,
        ranges,
        stamps,
        kind_ranges: part.kind_ranges,
        ambiguous_stamps: part.wall_fits[0],
        gap_stamps: part.wall_fits[1],
        quiet,
    }
}

impl ScanOutput {
    /// Stamps of what a run keeps (the access logs' requests per second and every event),
    /// hour by hour: the basis of the run's time range (`Run::range` computes the same from
    /// a stored run).
    pub fn profile(&self) -> Profile {
        let mut p = self.traffic.profile();
        for t in self
            .requests
            .iter()
            .map(|e| e.ts)
            .chain(self.errors.iter().map(|e| e.ts))
            .chain(self.fpm.iter().map(|e| e.ts))
        {
            p.add(t, 1);
        }
        if let Some(q) = &self.quiet {
            p.merge(&q.profile);
        }
        p
    }

    /// Every error-log row, held and quiet, in (time, source, line) order (tests and fuzz
    /// targets compare whole reads).
    pub fn error_rows(&self) -> Vec<ErrorEvent> {
        let mut v = self.errors.clone();
        v.extend(self.quiet.as_ref().map(|q| q.all()).unwrap_or_default());
        v.sort_by_key(|e| (e.ts, e.source, e.line));
        v
    }

    /// Every FPM row, held and quiet, in (time, source, line) order (tests and fuzz targets).
    pub fn fpm_rows(&self) -> Vec<FpmEvent> {
        let mut v = self.fpm.clone();
        v.extend(self.quiet.as_ref().map(|q| q.fpm_all()).unwrap_or_default());
        v.sort_by_key(|e| (e.ts, e.source, e.line));
        v
    }

    /// One warning per file with lines stamped outside `core` (far from the rest of the data,
    /// see `model::span`): how many, and where the first few are.
    pub fn far_off(&self, core: (Ts, Ts), sources: &[LogSource], zone: &Zone) -> Vec<Diagnostic> {
        use crate::model::span::hour_of;
        use crate::model::time::format_rfc3339;
        let (h0, h1) = (hour_of(core.0), hour_of(core.1));
        let mut out = Vec::new();
        for (src, cells) in self.stamps.iter().enumerate() {
            let mut far: Vec<(u64, Ts, u64)> = cells
                .iter()
                .filter(|(h, _)| **h < h0 || **h > h1)
                .map(|(_, (c, line))| (*line, c.min, c.weight))
                .collect();
            if far.is_empty() {
                continue;
            }
            let n: u64 = far.iter().map(|f| f.2).sum();
            far.sort_unstable();
            let at: Vec<String> = far
                .iter()
                .take(FAR_OFF_LISTED)
                .map(|(l, t, _)| format!("{l} ({})", format_rfc3339(*t, zone)))
                .collect();
            let more = if far.len() > FAR_OFF_LISTED {
                format!(" and {} more hours", far.len() - FAR_OFF_LISTED)
            } else {
                String::new()
            };
            out.push(Diagnostic {
                severity: Severity::Warning,
                file: sources[src].display.clone(),
                line: Some(far[0].0),
                offset: None,
                message: format!(
                    "{n} lines stamped far from the rest of the data ({} .. {}), at lines {}{more}: a broken clock or a damaged stamp? They stay in the event tables; the timeline leaves them out",
                    format_rfc3339(core.0, zone),
                    format_rfc3339(core.1, zone),
                    at.join(", ")
                ),
            });
        }
        out
    }
}

/// Far-off hours listed by line in a diagnostic (the rest are counted).
const FAR_OFF_LISTED: usize = 5;
