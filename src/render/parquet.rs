//! The Parquet files of a run directory: `events.parquet` (the three event kinds merged in
//! time order, a row group at a time) and `counters/*.parquet`.
//!
//! Input: the run's event tables and counters (`aggregate`). Output: files, each written to a
//! temporary name and renamed when complete. Invariants: every file output of a run lives in
//! `render` (`aggregate` builds tables and never writes); the wide events table is never
//! whole in memory.

use super::{io_err, table_err, RenderError};
use crate::aggregate::events::{column_type, Events};
use crate::aggregate::run::{counter_batches, EVENT_COLUMNS};
use crate::scan::traffic::Traffic;
use polars::prelude::*;
use std::path::Path;

/// Rows per row group of `events.parquet`.
const WRITE_BATCH: usize = 16 << 10;

/// Write `events.parquet`: the three kinds merged in (ts_ms, file, line, record) order, with
/// every column of `EVENT_COLUMNS` (then `incident`, `contributing`), null where a kind has
/// none, a row group at a time: the wide table is never whole in memory. The error-log and
/// FPM rows are the held frames' merged with the quiet rows read back (`scan::quiet`,
/// `scan::quiet_fpm`), whose frames are built a row group at a time.
pub fn write_events_parquet(ev: &Events, path: &Path) -> Result<(), RenderError> {
    let terr = |e| table_err("events.parquet")(e);
    let mut names: Vec<&str> = EVENT_COLUMNS.to_vec();
    names.extend(["incident", "contributing"]);
    // In the order of their `record` names ("error" < "fpm" < "request"), which break ties
    // of time, file and line in the documented order; quiet rows are errors (kind 3) and FPM
    // rows (kind 4).
    let frames = [&ev.err, &ev.fpm, &ev.req];
    const QUIET_ERR: usize = 3;
    const QUIET_FPM: usize = 4;
    let rank_of = [0u8, 1, 2, 0, 1];
    // Sort keys of each kind (file names borrowed from its frame).
    let ints = |d: &DataFrame, c: &str| -> PolarsResult<Vec<i64>> {
        Ok(d.column(c)?.cast(&DataType::Int64)?.i64()?.iter().map(|v| v.unwrap_or(0)).collect())
    };
    let mut keys = Vec::new();
    for d in frames {
        let file = d.column("file").and_then(|c| c.str().cloned()).map_err(terr)?;
        keys.push((ints(d, "ts_ms").map_err(terr)?, file, ints(d, "line").map_err(terr)?));
    }
    let mut qerr = ev.quiet.as_deref().map(|q| (q, q.rows.merged(q.rank()).peekable()));
    let mut qfpm = ev.quiet.as_deref().map(|q| (q, q.rows.fpm_merged(q.rank()).peekable()));
    // Each row group: every kind's rows of the group (for the held kinds a contiguous range,
    // since the merge keeps each kind's order: a zero-copy slice), widened to all columns,
    // stacked, then gathered once into merged order.
    let wide = |part: DataFrame| -> PolarsResult<DataFrame> {
        let n = part.height();
        let cols = names
            .iter()
            .map(|c| match part.column(c) {
                Ok(x) => Ok(x.clone()),
                Err(_) => Ok(Column::full_null((*c).into(), n, &column_type(c))),
            })
            .collect::<PolarsResult<Vec<Column>>>()?;
        DataFrame::new(n, cols)
    };
    let mut next = [0usize; 3];
    let (mut first, mut done) = (true, false);
    // The next row group, `None` after the last.
    let mut build = || -> PolarsResult<Option<DataFrame>> {
        if done {
            return Ok(None);
        }
        let start = next;
        let mut chunk: Vec<u8> = Vec::with_capacity(WRITE_BATCH);
        let (mut erows, mut frows) = (Vec::new(), Vec::new());
        while chunk.len() < WRITE_BATCH {
            let held = (0..3).filter(|&k| next[k] < frames[k].height()).map(|k| {
                let i = next[k];
                ((keys[k].0[i], keys[k].1.get(i).unwrap_or(""), keys[k].2[i], rank_of[k]), k)
            });
            let qe = qerr.as_mut().and_then(|(q, m)| {
                m.peek().map(|e| ((e.ts, q.file(e.source), e.line as i64, rank_of[QUIET_ERR]), QUIET_ERR))
            });
            let qf = qfpm.as_mut().and_then(|(q, m)| {
                m.peek().map(|e| ((e.ts, q.file(e.source), e.line as i64, rank_of[QUIET_FPM]), QUIET_FPM))
            });
            let Some((_, k)) = held.chain(qe).chain(qf).min() else { break };
            chunk.push(k as u8);
            match k {
                QUIET_ERR => erows.extend(qerr.as_mut().and_then(|(_, m)| m.next())),
                QUIET_FPM => frows.extend(qfpm.as_mut().and_then(|(_, m)| m.next())),
                k => next[k] += 1,
            }
        }
        // An empty first group still makes the file (with the schema and no rows).
        if chunk.is_empty() && !first {
            return Ok(None);
        }
        first = false;
        done = chunk.len() < WRITE_BATCH;
        let n = |k: usize| next[k] - start[k];
        let (qe, qf) = match ev.quiet.as_deref() {
            Some(q) => (q.frame(&erows)?, q.fpm_frame(&frows)?),
            None => (frames[0].clear(), frames[1].clear()),
        };
        // Stacked: held errors, quiet errors, held FPM, quiet FPM, requests.
        let (ne, nf) = (erows.len(), frows.len());
        let mut batch = wide(frames[0].slice(start[0] as i64, n(0)))?;
        for part in [qe, frames[1].slice(start[1] as i64, n(1)), qf, frames[2].slice(start[2] as i64, n(2))] {
            batch.vstack_mut_owned(wide(part)?)?;
        }
        // Row of each kind's first row in the stacked batch (by kind number).
        let base = [0, n(0) + ne, n(0) + ne + n(1) + nf, n(0), n(0) + ne + n(1)];
        let mut seen = [0usize; 5];
        let perm: Vec<u32> = chunk
            .iter()
            .map(|&k| {
                let k = k as usize;
                seen[k] += 1;
                (base[k] + seen[k] - 1) as u32
            })
            .collect();
        Ok(Some(batch.take(&IdxCa::from_vec("".into(), perm))?))
    };
    let mut out: Option<BatchedParquet> = None;
    let mut cur = build().map_err(terr)?;
    while let Some(batch) = cur {
        let w = match &mut out {
            Some(w) => w,
            None => out.insert(BatchedParquet::create(path, &batch)?),
        };
        // This row group is encoded while the next is built (the merge, the quiet rows' cells
        // and the gather are half the work): two cores at once on the longest report file.
        let (written, next) = rayon::join(|| w.write(&batch), &mut build);
        written?;
        cur = next.map_err(terr)?;
    }
    match out {
        Some(w) => w.finish(),
        None => Ok(()),
    }
}

/// Write `counters/*.parquet` into `dir` (which exists): one file per counter table, one row
/// group per batch, each written as it comes (see `counter_batches`).
pub fn write_counter_files(t: &Traffic, dir: &Path) -> Result<(), RenderError> {
    let mut open: Option<(&'static str, BatchedParquet)> = None;
    counter_batches(
        t,
        |e| table_err("counters")(e),
        |name, df| -> Result<(), RenderError> {
            if open.as_ref().map(|o| o.0) != Some(name) {
                if let Some((_, w)) = open.take() {
                    w.finish()?;
                }
                open = Some((name, BatchedParquet::create(&dir.join(format!("{name}.parquet")), &df)?));
            }
            open.as_mut().expect("opened above").1.write(&df)
        },
    )?;
    match open {
        Some((_, w)) => w.finish(),
        None => Ok(()),
    }
}

/// A Parquet file written a frame (row group) at a time, atomically (temp file + rename on
/// `finish`).
pub struct BatchedParquet {
    w: polars::io::parquet::write::BatchedWriter<std::fs::File>,
    tmp: std::path::PathBuf,
    path: std::path::PathBuf,
}

impl BatchedParquet {
    /// Create the file with the schema of `first` (not yet written).
    pub fn create(path: &Path, first: &DataFrame) -> Result<Self, RenderError> {
        let tmp = path.with_extension("tmp~");
        let f = std::fs::File::create(&tmp).map_err(io_err(&tmp))?;
        let w = ParquetWriter::new(f)
            .with_compression(ParquetCompression::Zstd(None))
            .batched(first.schema())
            .map_err(table_err(&path.display().to_string()))?;
        Ok(BatchedParquet { w, tmp, path: path.to_path_buf() })
    }

    pub fn write(&mut self, df: &DataFrame) -> Result<(), RenderError> {
        self.w.write_batch(df).map_err(table_err(&self.path.display().to_string()))
    }

    pub fn finish(self) -> Result<(), RenderError> {
        self.w.finish().map_err(table_err(&self.path.display().to_string()))?;
        std::fs::rename(&self.tmp, &self.path).map_err(io_err(&self.path))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aggregate::run::{counter_batches, read_parquet, traffic_from_frames, COUNTER_BATCH};
    use crate::scan::layout::Metric;
    use std::collections::HashMap;

    /// Counters larger than one batch survive the batched Parquet write and read back equal.
    #[test]
    fn counters_round_trip_through_batched_parquet() {
        let mut t = Traffic::default();
        // More seconds than one batch, and latency rows spanning several batches (about
        // 60 distinct bins per minute and metric).
        let n = COUNTER_BATCH as i64 + 5000;
        for s in 0..n {
            let sec = 1_700_000_000 + s;
            t.count(sec, if s % 97 == 0 { 502 } else { 200 }, s % 13 == 0);
            t.latency(sec, Metric::RequestTime, (s * 7919 % 5000) as u32);
            t.latency(sec, Metric::UpstreamResponseTime, (s * 104_729 % 3000) as u32);
        }
        t.finish();
        let dir = std::env::temp_dir().join(format!("upcause-counters-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut batches: HashMap<&str, usize> = HashMap::new();
        counter_batches(
            &t,
            |e| e,
            |name, _| -> PolarsResult<()> {
                *batches.entry(name).or_default() += 1;
                Ok(())
            },
        )
        .unwrap();
        write_counter_files(&t, &dir).unwrap();
        assert_eq!(batches["seconds"], 2);
        assert!(batches["latency"] >= 2, "{batches:?}");
        let frames: HashMap<String, DataFrame> =
            ["seconds", "latency", "latency_max", "vhosts", "peers", "peer_latency"]
                .iter()
                .map(|n| (n.to_string(), read_parquet(&dir.join(format!("{n}.parquet"))).unwrap()))
                .collect();
        assert_eq!(frames["seconds"].height(), n as usize);
        let back = traffic_from_frames(&frames).unwrap();
        assert_eq!(back.per_sec, t.per_sec);
        assert_eq!(back.lat, t.lat);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
