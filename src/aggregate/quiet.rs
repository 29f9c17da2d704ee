//! The quiet rows in the report stage: merged into the error-log rows `errors.csv` streams
//! (`error_rows`) and the FPM rows `fpm.csv` streams (`fpm_rows`; `events.parquet`'s merge is
//! `wide::Groups`), and read once, by their heads, for the few things the report shows of
//! them (`digest`: per-cause counts and evidence samples, post-mortem quotes; `by_pool.csv`'s
//! counts of the FPM rows).
//!
//! Input: `Events` (the held rows as a frame, the quiet ones as `scan::quiet::QuietRows`).
//! Output: frames of error rows with the columns of the held frame. Invariants: the rows come
//! in (time, file, line) order, the held frame's order, so a table streamed from
//! `error_rows` or `fpm_rows` is the table one sorted frame of every row gave; what is read of the
//! quiet rows is bounded (a batch, or a few rows per cause and per incident), never all of
//! them at once.

use super::events::{error_frame, Events, RowCtx};
use crate::analysis::Analysis;
use crate::model::event::{ErrorRef, FpmEvent};
use crate::model::{Ts, Zone};
use crate::scan::quiet::{Head, Merged, QuietRows};
use polars::prelude::*;
use std::collections::{BTreeMap, BTreeSet};

/// Evidence samples per cause (report.html).
pub const SAMPLES: usize = 5;
/// Evidence lines quoted per cause of an incident (postmortem.md).
pub const QUOTES: usize = 3;
/// Evidence lines are quoted from a minute before an incident (the first evidence often
/// precedes the first failure) to 5 s after it.
pub const QUOTE_BEFORE_MS: Ts = 60_000;
pub const QUOTE_AFTER_MS: Ts = 5_000;

/// A fresh analysis's quiet rows, with what writing them needs.
pub struct Quiet {
    pub rows: QuietRows,
    files: Vec<String>,
    /// Per source: the place of its file name in name order (the tables' tie-break); sources
    /// of the same name (a merge's runs) share it.
    rank: Vec<u32>,
    zone: Zone,
    /// Per source: its machine (one for a fresh analysis, one per run for `merge`).
    machines: Vec<String>,
}

impl Quiet {
    pub fn new(rows: QuietRows, a: &Analysis, machine: &str) -> Quiet {
        let files: Vec<String> = a.sources.iter().map(|s| s.display.clone()).collect();
        let machines = vec![machine.to_string(); files.len()];
        Quiet::with_sources(rows, files, machines, a.zone.zone.clone())
    }

    /// Quiet rows of sources named `files`, from `machines` (per source), their times
    /// written in `zone` (`restore`: a merge's stored rows; a row's place, `Events::places`,
    /// is its source number).
    pub fn with_sources(rows: QuietRows, files: Vec<String>, machines: Vec<String>, zone: Zone) -> Quiet {
        let mut by_name: Vec<usize> = (0..files.len()).collect();
        by_name.sort_by(|&x, &y| (&files[x], x).cmp(&(&files[y], y)));
        let mut rank = vec![0u32; files.len()];
        let mut r = 0u32;
        for (k, &i) in by_name.iter().enumerate() {
            if k > 0 && files[i] != files[by_name[k - 1]] {
                r += 1;
            }
            rank[i] = r;
        }
        Quiet { rows, files, rank, zone, machines }
    }

    pub fn file(&self, src: u32) -> &str {
        self.files.get(src as usize).map_or("", String::as_str)
    }

    /// A stamp as the tables write it, appended to `out` (`stamps` keeps the text of the last
    /// second: the rows come in time order).
    pub fn push_time(&self, stamps: &mut crate::model::time::StampText, ts: Ts, out: &mut String) {
        stamps.push(ts, &self.zone, out)
    }

    /// The machine of source `src`.
    pub fn machine(&self, src: u32) -> &str {
        self.machines.get(src as usize).map_or("", String::as_str)
    }

    /// Per source: its place in file-name order (`QuietRows::merged`).
    pub fn rank(&self) -> &[u32] {
        &self.rank
    }

    pub(super) fn ctx(&self) -> RowCtx<'_> {
        RowCtx {
            zone: &self.zone,
            files: self.files.iter().map(String::as_str).collect(),
            machines: self.machines.iter().map(String::as_str).collect(),
        }
    }

    /// The frame of error rows `rows` (in that order), with the held frame's columns.
    pub fn frame(&self, rows: &[ErrorRef]) -> PolarsResult<DataFrame> {
        error_frame(&self.ctx(), rows)
    }

    fn key<'q>(&'q self, h: &Head) -> Key<'q> {
        (h.ts, self.file(h.src), h.line as i64, h.src)
    }
}

/// A row's key in a kind's order: (time, file, line, place). The place orders rows tied on
/// the rest, which only a merge has (see `Events::places`).
pub(super) type Key<'a> = (Ts, &'a str, i64, u32);

/// The sort key columns of a frame: (ts_ms, file, line), and its rows' places.
pub(super) struct Keys {
    ts: Vec<i64>,
    file: StringChunked,
    line: Vec<i64>,
    place: Vec<u32>,
}

impl Keys {
    /// The keys of `d`, whose rows' places are `places` (empty: all 0).
    pub(super) fn of(d: &DataFrame, places: &[u32]) -> PolarsResult<Keys> {
        let ints = |c: &str| -> PolarsResult<Vec<i64>> {
            Ok(d.column(c)?.cast(&DataType::Int64)?.i64()?.iter().map(|v| v.unwrap_or(0)).collect())
        };
        let place = if places.len() == d.height() { places.to_vec() } else { Vec::new() };
        Ok(Keys { ts: ints("ts_ms")?, file: d.column("file")?.str()?.clone(), line: ints("line")?, place })
    }
    pub(super) fn get(&self, i: usize) -> Key<'_> {
        (self.ts[i], self.file.get(i).unwrap_or(""), self.line[i], self.place.get(i).copied().unwrap_or(0))
    }
}

/// A row of a kind's table: a row of its held frame, or a quiet row read back.
// Rows stream through one at a time: boxing the larger variant would allocate per row.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Copy, Debug)]
pub enum Row<T> {
    Held(usize),
    Quiet(T),
}

pub type ErrRow<'e> = Row<ErrorRef<'e>>;

/// The (time, source, line) of a quiet row.
pub trait Keyed {
    fn key(&self) -> (Ts, u32, u64);
}

impl Keyed for ErrorRef<'_> {
    fn key(&self) -> (Ts, u32, u64) {
        (self.ts, self.source, self.line)
    }
}

impl Keyed for FpmEvent {
    fn key(&self) -> (Ts, u32, u64) {
        (self.ts, self.source, self.line)
    }
}

/// Every row of a kind in (time, file, line) order: its held frame's rows merged with its
/// quiet rows read back (`error_rows`).
pub struct Rows<'e, T, I: Iterator<Item = T>> {
    keys: Keys,
    pos: usize,
    quiet: Option<(&'e Quiet, std::iter::Peekable<I>)>,
}

pub fn error_rows(ev: &Events) -> PolarsResult<Rows<'_, ErrorRef<'_>, Merged<'_>>> {
    let quiet = ev.quiet.as_deref().map(|q| (q, q.rows.merged(&q.rank).peekable()));
    Ok(Rows { keys: Keys::of(&ev.err, &ev.places.err)?, pos: 0, quiet })
}

/// Every FPM row in (time, file, line) order (`fpm.csv`): the held frame's rows merged with
/// the quiet ones read back.
pub fn fpm_rows(ev: &Events) -> PolarsResult<Rows<'_, FpmEvent, impl Iterator<Item = FpmEvent> + '_>> {
    let quiet = ev.quiet.as_deref().map(|q| (q, q.rows.fpm_merged(&q.rank).peekable()));
    Ok(Rows { keys: Keys::of(&ev.fpm, &ev.places.fpm)?, pos: 0, quiet })
}

impl<T: Keyed, I: Iterator<Item = T>> Iterator for Rows<'_, T, I> {
    type Item = Row<T>;

    fn next(&mut self) -> Option<Row<T>> {
        let held = (self.pos < self.keys.ts.len()).then(|| self.keys.get(self.pos));
        let take_held = match (&mut self.quiet, held) {
            (Some((q, merged)), Some(a)) => merged.peek().is_none_or(|e| {
                let (ts, src, line) = e.key();
                a <= (ts, q.file(src), line as i64, src)
            }),
            (_, h) => h.is_some(),
        };
        if take_held {
            self.pos += 1;
            return Some(Row::Held(self.pos - 1));
        }
        self.quiet.as_mut()?.1.next().map(Row::Quiet)
    }
}

/// What the report shows of the error rows besides the tables: per cause, its first
/// `SAMPLES` rows and how many it has (report.html); the quiet rows an incident quotes
/// (postmortem.md: the first `QUOTES` of each of its causes in its quote window).
pub struct Digest {
    /// The sampled rows, cause by cause, each cause's in order.
    pub samples: DataFrame,
    /// Per cause: its rows in `samples`, and how many error rows it has in all.
    pub sample_rows: BTreeMap<String, (Vec<usize>, usize)>,
    /// Quiet rows inside an incident's quote window with one of its causes, in order.
    pub quotes: DataFrame,
}

/// The digest of `ev`'s error rows; `windows` are the quote windows of each cause.
pub fn digest(ev: &Events, windows: &BTreeMap<&str, Vec<(Ts, Ts)>>) -> PolarsResult<Digest> {
    let err = &ev.err;
    let keys = Keys::of(err, &ev.places.err)?;
    // Held rows: the first `SAMPLES` of each cause and the counts (one pass, borrowed).
    let mut held: BTreeMap<String, (Vec<usize>, usize)> = BTreeMap::new();
    if let Ok(c) = err.column("cause").and_then(|c| c.str().cloned()) {
        for (i, v) in c.iter().enumerate() {
            let Some(v) = v else { continue };
            let e = match held.get_mut(v) {
                Some(e) => e,
                None => held.entry(v.to_string()).or_default(),
            };
            e.1 += 1;
            if e.0.len() < SAMPLES {
                e.0.push(i);
            }
        }
    }
    let Some(q) = ev.quiet.as_deref() else {
        let idx: Vec<IdxSize> = held.values().flat_map(|r| r.0.iter().map(|&i| i as IdxSize)).collect();
        let samples = err.take(&IdxCa::from_vec("".into(), idx))?;
        let mut at = 0;
        let sample_rows = held
            .into_iter()
            .map(|(c, (rows, n))| {
                let k = rows.len();
                at += k;
                (c, ((at - k..at).collect(), n))
            })
            .collect();
        return Ok(Digest { samples, sample_rows, quotes: err.clear() });
    };
    // Quiet rows, by their heads: counts, the first `SAMPLES` of each cause, and the first
    // `QUOTES` of each (cause, window), each set ordered by (time, file rank, line, source).
    type Set = BTreeSet<(Ts, u32, u64, u32, Head)>;
    let keep = |s: &mut Set, h: &Head, n: usize| {
        s.insert((h.ts, q.rank.get(h.src as usize).copied().unwrap_or(u32::MAX), h.line, h.src, *h));
        if s.len() > n {
            s.pop_last();
        }
    };
    let mut first: BTreeMap<&'static str, (Set, usize)> = BTreeMap::new();
    let mut quoted: BTreeMap<(&'static str, usize), Set> = BTreeMap::new();
    for h in q.rows.heads() {
        let e = first.entry(h.cause.as_str()).or_default();
        e.1 += 1;
        keep(&mut e.0, &h, SAMPLES);
        if let Some(ws) = windows.get(h.cause.as_str()) {
            for (k, &(a, b)) in ws.iter().enumerate() {
                if a <= h.ts && h.ts <= b {
                    keep(quoted.entry((h.cause.as_str(), k)).or_default(), &h, QUOTES);
                }
            }
        }
    }
    // Per cause: held and quiet candidates in key order, the first `SAMPLES`.
    enum Pick {
        Held(usize),
        Quiet(Head),
    }
    let mut causes: BTreeMap<String, (Vec<Pick>, usize)> = BTreeMap::new();
    for (c, (rows, n)) in held {
        causes.insert(c, (rows.into_iter().map(Pick::Held).collect(), n));
    }
    for (c, (set, n)) in first {
        let e = causes.entry(c.to_string()).or_default();
        e.1 += n;
        e.0.extend(set.iter().map(|x| Pick::Quiet(x.4)));
    }
    let mut idx: Vec<IdxSize> = Vec::new();
    let mut rows: Vec<ErrorRef> = Vec::new();
    // Per cause: where each sample is ((held, index) in `idx` or `rows`), and the count.
    type Placed = (String, Vec<(bool, usize)>, usize);
    let mut order: Vec<Placed> = Vec::new();
    for (c, (mut picks, n)) in causes {
        let key = |p: &Pick| match p {
            Pick::Held(i) => keys.get(*i),
            Pick::Quiet(h) => q.key(h),
        };
        picks.sort_by(|a, b| key(a).cmp(&key(b)));
        picks.truncate(SAMPLES);
        let mut at = Vec::new();
        for p in picks {
            match p {
                Pick::Held(i) => {
                    at.push((true, idx.len()));
                    idx.push(i as IdxSize);
                }
                Pick::Quiet(h) => {
                    at.push((false, rows.len()));
                    rows.extend(q.rows.get(h.at));
                }
            }
        }
        order.push((c, at, n));
    }
    let mut samples = err.take(&IdxCa::from_vec("".into(), idx.clone()))?;
    samples.vstack_mut_owned(q.frame(&rows)?)?;
    let nh = idx.len();
    let sample_rows = order
        .into_iter()
        .map(|(c, at, n)| (c, (at.iter().map(|&(h, i)| if h { i } else { nh + i }).collect(), n)))
        .collect();
    let mut quotes: Vec<(Ts, u32, u64, u32, Head)> = quoted.into_values().flatten().collect();
    quotes.sort();
    quotes.dedup();
    let rows: Vec<ErrorRef> = quotes.iter().filter_map(|x| q.rows.get(x.4.at)).collect();
    Ok(Digest { samples, sample_rows, quotes: q.frame(&rows)? })
}
