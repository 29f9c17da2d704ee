//! Stored rows out of memory again, for `merge`: the rows of a run directory's
//! `events.parquet` that a fresh analysis keeps out of memory (`ErrorEvent::is_quiet`,
//! `FpmEvent::is_quiet`: most of a production error log) go back into quiet rows
//! (`scan::quiet::Sink`), so a merge holds in memory what an analysis of all the inputs would.
//!
//! Input: run directories' `events.parquet`, read a few row groups at a time (`READ_ROWS`),
//! with their `summary.json`'s inputs (file names and machines, by source). Output: each run's
//! other rows as `Events` (each kind with its own columns, as `Events::from_wide` splits
//! them), and one `Quiet` for every run's quiet rows.
//! Invariants: a row leaves memory only if it reads back as the cells it had (its time text
//! in the merged run's zone, its file and machine its source's, its cause its line's, no
//! verdict); any other row is held, so the merged run's tables and row files are the ones
//! every row held gave. What is in memory at once besides the held rows: the rows read and the
//! encoded rows not yet written (`PENDING`). Rows that cannot be written (no temporary
//! directory) come back as held rows with a warning, as in the scan.

use super::events::{drop_run_only, error_frame, fpm_frame, kind_has, Events, Places, RowCtx, PLACE_COLUMN};
use super::quiet::Quiet;
use super::spill::{compact, Stacked};
use crate::model::event::{is_quiet, ErrorRef, OriginRef};
use crate::model::meta::RunMeta;
use crate::model::time::StampText;
use crate::model::{CauseClass, ErrorEvent, FpmEvent, Origin, Zone};
use crate::scan::quiet::{Buf, Kind, QuietRows, Sink};
use polars::prelude::*;
use rustc_hash::FxHashMap as HashMap;
use std::path::Path;

/// Encoded rows held across all sources before they are written out as runs (one per
/// source): a source's rows are spread over the whole file, so each source cannot fill a
/// buffer of its own first.
const PENDING: usize = 16 << 20;

/// Rows of `events.parquet` read at a time (whole row groups).
const READ_ROWS: usize = 48 << 10;

/// The record kinds, in the order of `Events`' frames.
const KINDS: [&str; 3] = ["request", "error", "fpm"];

/// The quiet rows of the runs being merged, and what writing them back needs.
pub struct Restore {
    sink: Sink,
    sigs: HashMap<&'static str, &'static str>,
    zone: Zone,
    files: Vec<String>,
    machines: Vec<String>,
    /// Per source (of all runs, in run order): its unwritten error and FPM rows.
    bufs: Vec<Option<(Buf, Buf)>>,
    pending: usize,
    /// Rows whose run could not be written (held instead).
    back_err: Vec<ErrorEvent>,
    back_fpm: Vec<FpmEvent>,
}

/// A stored row group's columns, by name (those a quiet row has).
struct Cols<'d> {
    record: &'d StringChunked,
    machine: &'d StringChunked,
    ts_ms: &'d Int64Chunked,
    time: &'d StringChunked,
    file: &'d StringChunked,
    line: &'d Int64Chunked,
    cause_class: &'d StringChunked,
    cause: &'d StringChunked,
    verdict: [&'d StringChunked; 3],
    level: &'d StringChunked,
    pid: &'d Int64Chunked,
    conn: &'d Int64Chunked,
    signature: &'d StringChunked,
    errno: &'d Int64Chunked,
    phase: &'d StringChunked,
    line_class: &'d StringChunked,
    failure: &'d BooleanChunked,
    texts: [&'d StringChunked; 6],
    message: &'d StringChunked,
    entry_lines: &'d Int64Chunked,
    pool: &'d StringChunked,
    event: &'d StringChunked,
    child_pid: &'d Int64Chunked,
    signal: &'d Int64Chunked,
    exit_code: &'d Int64Chunked,
    script: &'d StringChunked,
    elapsed_s: &'d Float64Chunked,
    time_exact: &'d BooleanChunked,
    origin: [&'d StringChunked; 4],
}

impl<'d> Cols<'d> {
    fn of(d: &'d DataFrame) -> PolarsResult<Cols<'d>> {
        let s = |c: &str| d.column(c)?.str();
        let i = |c: &str| d.column(c)?.i64();
        let b = |c: &str| d.column(c)?.bool();
        Ok(Cols {
            record: s("record")?,
            machine: s("machine")?,
            ts_ms: i("ts_ms")?,
            time: s("time")?,
            file: s("file")?,
            line: i("line")?,
            cause_class: s("cause_class")?,
            cause: s("cause")?,
            verdict: [s("confidence")?, s("evidence")?, s("detail")?],
            level: s("level")?,
            pid: i("pid")?,
            conn: i("conn")?,
            signature: s("signature")?,
            errno: i("errno")?,
            phase: s("phase")?,
            line_class: s("line_class")?,
            failure: b("failure")?,
            texts: [s("client")?, s("server")?, s("request")?, s("upstream")?, s("vhost")?, s("referrer")?],
            message: s("message")?,
            entry_lines: i("entry_lines")?,
            pool: s("pool")?,
            event: s("event")?,
            child_pid: i("child_pid")?,
            signal: i("signal")?,
            exit_code: i("exit_code")?,
            script: s("script")?,
            elapsed_s: d.column("elapsed_s")?.f64()?,
            time_exact: b("time_exact")?,
            origin: [s("envelope")?, s("container")?, s("stream")?, s("log_host")?],
        })
    }

    /// The envelope of row `i`: `Some(None)` for none, `None` when it does not read back.
    fn origin(&self, i: usize) -> Option<Option<OriginRef<'d>>> {
        let [env, name, stream, host] = self.origin.map(|c| c.get(i));
        let Some(env) = env else {
            return (name.is_none() && stream.is_none() && host.is_none()).then_some(None);
        };
        let stream = match stream {
            Some(s) => Some(s.parse().ok()?),
            None => None,
        };
        Some(Some(OriginRef { envelope: env.parse().ok()?, name, stream, host }))
    }

    /// Row `i` as the quiet error row it reads back from, if it is one.
    fn error(&self, i: usize, src: u32, sigs: &HashMap<&'static str, &'static str>) -> Option<ErrorRef<'d>> {
        let class: CauseClass = self.line_class.get(i)?.parse().ok()?;
        let failure = self.failure.get(i)?;
        let signature = *sigs.get(self.signature.get(i)?)?;
        // A quiet row has no verdict: its cause class is its line's.
        if !is_quiet(failure, class, signature)
            || self.cause_class.get(i)? != class.as_str()
            || self.verdict.iter().any(|c| c.get(i).is_some())
        {
            return None;
        }
        let [client, server, request, upstream, host, referrer] = self.texts.map(|c| c.get(i));
        Some(ErrorRef {
            ts: self.ts_ms.get(i)?,
            source: src,
            line: self.line.get(i)?.try_into().ok()?,
            lines: self.entry_lines.get(i)?.try_into().ok()?,
            level: self.level.get(i)?.parse().ok()?,
            pid: self.pid.get(i)?.try_into().ok()?,
            conn: int(self.conn.get(i))?,
            signature,
            errno: int(self.errno.get(i))?,
            phase: self.phase.get(i)?.parse().ok()?,
            class,
            cause: self.cause.get(i)?.parse().ok()?,
            failure,
            client,
            server,
            request,
            upstream,
            host,
            referrer,
            message: self.message.get(i)?,
            origin: self.origin(i)?,
        })
    }

    /// Row `i` as the quiet FPM row it reads back from, if it is one.
    fn fpm(&self, i: usize, src: u32) -> Option<FpmEvent> {
        let origin = self.origin(i)?.map(|o| {
            std::sync::Arc::new(Origin {
                envelope: o.envelope,
                name: o.name.map(String::from),
                stream: o.stream,
                host: o.host.map(String::from),
            })
        });
        let e = FpmEvent {
            ts: self.ts_ms.get(i)?,
            ts_exact: self.time_exact.get(i)?,
            source: src,
            line: self.line.get(i)?.try_into().ok()?,
            level: self.level.get(i)?.parse().ok()?,
            pool: self.pool.get(i).map(String::from),
            kind: self.event.get(i)?.parse().ok()?,
            child_pid: int(self.child_pid.get(i))?,
            signal: int(self.signal.get(i))?,
            exit_code: int(self.exit_code.get(i))?,
            script: self.script.get(i).map(String::from),
            request: self.texts[2].get(i).map(String::from),
            elapsed_s: self.elapsed_s.get(i),
            message: self.message.get(i)?.to_string(),
            origin,
        };
        e.is_quiet().then_some(e)
    }
}

impl Restore {
    /// Quiet rows written into the system's temporary directory, their times in `zone` (the
    /// merged run's).
    pub fn new(zone: Zone) -> Result<Restore, String> {
        let ids = crate::classify::Classifier::new().map_err(|e| e.to_string())?.signature_ids();
        let sigs = ids.iter().map(|&s| (s, s)).collect();
        Ok(Restore {
            sink: Sink::new(std::env::temp_dir(), ids),
            sigs,
            zone,
            files: Vec::new(),
            machines: Vec::new(),
            bufs: Vec::new(),
            pending: 0,
            back_err: Vec::new(),
            back_fpm: Vec::new(),
        })
    }

    /// The rows of one run's `events.parquet` (`path`) that stay in memory, each kind in (time,
    /// file, line) order as stored with their places (`Events::places`: their sources'
    /// numbers), and how many went out of it. The run's sources follow those of the runs read
    /// before it.
    pub fn rows(&mut self, path: &Path, meta: &RunMeta) -> PolarsResult<(Events, u64)> {
        let base = self.files.len() as u32;
        self.files.extend(meta.inputs.iter().map(|i| i.path.clone()));
        self.machines.extend(meta.inputs.iter().map(|i| i.machine.clone()));
        self.bufs.resize_with(self.files.len(), || None);
        // A source by its file and machine (a merged run lists one path once per machine: the
        // same log path on every host of a fleet), and whether no other input has both.
        let mut src_of: HashMap<(&str, &str), (u32, bool)> = HashMap::default();
        for (k, i) in meta.inputs.iter().enumerate() {
            src_of
                .entry((i.path.as_str(), i.machine.as_str()))
                .and_modify(|e| e.1 = false)
                .or_insert((base + k as u32, true));
        }
        // Paths two inputs share with their machine (one log merged twice, or two runs of one
        // machine merged): which of them a row came from is unknown, so their rows tied on
        // (time, file, line) keep their stored order only if every row of the path is held,
        // with one place (the run's first source number, which orders it among the runs).
        let shared: std::collections::HashSet<&str> = src_of.iter().filter(|(_, v)| !v.1).map(|(k, _)| k.0).collect();
        let find = |f: &str, m: &str| -> Option<(u32, bool)> {
            if !shared.is_empty() && shared.contains(f) {
                return Some((base, false));
            }
            src_of.get(&(f, m)).copied()
        };
        let open = || {
            std::fs::File::open(path)
                .map_err(|e| PolarsError::ComputeError(format!("cannot read {}: {e}", path.display()).into()))
        };
        let mut reader = ParquetReader::new(open()?);
        let md = reader.get_metadata()?.clone();
        // How many rows of each kind the file has: what each kind's held frame can grow to
        // (its place in the temporary file, `spill::Stacked`).
        let mut counts = [0usize; 3];
        let records = ParquetReader::new(open()?).with_columns(Some(vec!["record".into()])).finish()?;
        for r in records.column("record")?.str()?.iter().flatten() {
            if let Some(k) = KINDS.iter().position(|x| *x == r) {
                counts[k] += 1;
            }
        }
        drop(records);
        let mut stacks: [Option<Stacked>; 3] = Default::default();
        let mut places: [Vec<u32>; 3] = Default::default();
        let mut out = 0u64;
        let mut stamps = StampText::default();
        let mut text = String::new();
        // A few row groups at a time (one at a time read at half the speed).
        let mut spans: Vec<(usize, usize)> = Vec::new();
        let mut off = 0usize;
        for rg in &md.row_groups {
            match spans.last_mut() {
                Some(s) if s.1 < READ_ROWS => s.1 += rg.num_rows(),
                _ => spans.push((off, rg.num_rows())),
            }
            off += rg.num_rows();
        }
        for &(off, n) in &spans {
            let mut r = ParquetReader::new(open()?).with_slice(Some((off, n)));
            r.set_metadata(md.clone());
            let mut d = r.finish()?;
            drop_run_only(&mut d)?;
            let c = Cols::of(&d)?;
            // Per kind (requests, errors, FPM), which rows stay.
            let mut keep: [Vec<bool>; 3] = std::array::from_fn(|_| Vec::with_capacity(d.height()));
            for i in 0..d.height() {
                let src = c.file.get(i).zip(c.machine.get(i)).and_then(|(f, m)| find(f, m));
                let rec = c.record.get(i);
                let gone = match (src, rec) {
                    (Some((s, true)), Some(r @ ("error" | "fpm")))
                        if self.same_place(&c, i, s, &mut stamps, &mut text) =>
                    {
                        if r == "error" {
                            self.push_error(&c, i, s)
                        } else {
                            self.push_fpm(&c, i, s)
                        }
                    }
                    _ => false,
                };
                for (k, name) in KINDS.iter().enumerate() {
                    let kept = !gone && rec == Some(*name);
                    keep[k].push(kept);
                    if kept {
                        places[k].push(src.map_or(base, |s| s.0));
                    }
                }
                out += gone as u64;
            }
            if self.pending >= PENDING {
                self.flush();
            }
            // Each kind with its own columns only (a wide row is 57 cells, most of them null
            // for any one kind), as `Events::from_wide` splits them.
            for (k, stack) in stacks.iter_mut().enumerate() {
                let cols = d.get_column_names().into_iter().filter(|n| kind_has(KINDS[k], n.as_str())).cloned();
                let kept = compact(d.select(cols)?.filter(&BooleanChunked::from_slice("".into(), &keep[k]))?)?;
                if kept.height() > 0 {
                    stack.get_or_insert_with(|| Stacked::new(counts[k], &kept)).push(kept)?;
                }
            }
        }
        // The file's kinds (those without a row: the file's columns, no rows).
        let mut empty = reader.with_slice(Some((0, 0))).finish()?;
        drop_run_only(&mut empty)?;
        let empty = Events::from_wide(&empty.clear())?;
        let [req, err, fpm] = stacks.map(|s| s.map(Stacked::finish).transpose().map(Option::flatten));
        let held = Events {
            req: req?.unwrap_or(empty.req),
            err: err?.unwrap_or(empty.err),
            fpm: fpm?.unwrap_or(empty.fpm),
            quiet: None,
            places: Places {
                req: std::mem::take(&mut places[0]),
                err: std::mem::take(&mut places[1]),
                fpm: std::mem::take(&mut places[2]),
            },
        };
        Ok((held, out))
    }

    /// Row `i` of source `src` would be written with the time text and machine it has.
    fn same_place(&self, c: &Cols, i: usize, src: u32, stamps: &mut StampText, text: &mut String) -> bool {
        text.clear();
        stamps.push(c.ts_ms.get(i).unwrap_or(0), &self.zone, text);
        c.time.get(i) == Some(text.as_str()) && c.machine.get(i) == self.machines.get(src as usize).map(String::as_str)
    }

    fn push_error(&mut self, c: &Cols, i: usize, src: u32) -> bool {
        let Some(e) = c.error(i, src, &self.sigs) else { return false };
        let b = self.bufs[src as usize].get_or_insert_with(new_bufs);
        let before = b.0.byte_len();
        self.sink.push(&mut b.0, &e);
        self.pending += b.0.byte_len() - before;
        true
    }

    fn push_fpm(&mut self, c: &Cols, i: usize, src: u32) -> bool {
        let Some(e) = c.fpm(i, src) else { return false };
        let b = self.bufs[src as usize].get_or_insert_with(new_bufs);
        let before = b.1.byte_len();
        self.sink.push_fpm(&mut b.1, &e);
        self.pending += b.1.byte_len() - before;
        true
    }

    /// Every source's rows out as runs; the buffers are dropped (their pages with them).
    fn flush(&mut self) {
        for (src, b) in self.bufs.iter_mut().enumerate() {
            if let Some((err, fpm)) = b.as_mut() {
                self.back_err.extend(self.sink.flush(err, src as u32, 0));
                self.back_fpm.extend(self.sink.flush_fpm(fpm, src as u32, 0));
            }
            *b = None;
        }
        self.pending = 0;
    }

    /// The quiet rows of every run, the error and FPM rows that could not be written (as
    /// frames of their kinds' columns and their places, `PLACE_COLUMN`: their sources'
    /// numbers, to hold), and a warning if some could not.
    pub fn finish(mut self) -> PolarsResult<Restored> {
        self.flush();
        // Lines are the files' own (each run starts at line 0 of its source).
        let (rows, warning): (Option<QuietRows>, Option<String>) = self.sink.finish(|_, _| 0);
        let x = RowCtx {
            zone: &self.zone,
            files: self.files.iter().map(String::as_str).collect(),
            machines: self.machines.iter().map(String::as_str).collect(),
        };
        let views: Vec<ErrorRef> = self.back_err.iter().map(ErrorEvent::view).collect();
        let mut err = error_frame(&x, &views)?;
        err.with_column(Column::new(PLACE_COLUMN.into(), views.iter().map(|e| e.source).collect::<Vec<u32>>()))?;
        let mut fpm = fpm_frame(&x, &self.back_fpm)?;
        fpm.with_column(Column::new(
            PLACE_COLUMN.into(),
            self.back_fpm.iter().map(|e| e.source).collect::<Vec<u32>>(),
        ))?;
        drop(x);
        let quiet = rows.map(|r| Quiet::with_sources(r, self.files, self.machines, self.zone));
        Ok(Restored { quiet, err, fpm, warning })
    }
}

/// An optional stored integer as the row's type: `Some(None)` for null, `None` when it does
/// not fit.
fn int<T: TryFrom<i64>>(v: Option<i64>) -> Option<Option<T>> {
    match v {
        None => Some(None),
        Some(v) => T::try_from(v).ok().map(Some),
    }
}

fn new_bufs() -> (Buf, Buf) {
    (Buf::new(Kind::Error), Buf::new(Kind::Fpm))
}

/// What `Restore::finish` gives.
pub struct Restored {
    pub quiet: Option<Quiet>,
    /// Rows that could not be written out: held with the runs' rows.
    pub err: DataFrame,
    pub fpm: DataFrame,
    pub warning: Option<String>,
}
