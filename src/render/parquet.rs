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
/// none, a row group at a time: the wide table is never whole in memory. Error rows come from
/// `quiet::error_batches` (the held rows merged with the quiet ones read back), a batch ahead.
pub fn write_events_parquet(ev: &Events, path: &Path) -> Result<(), RenderError> {
    let terr = |e| table_err("events.parquet")(e);
    let mut names: Vec<&str> = EVENT_COLUMNS.to_vec();
    names.extend(["incident", "contributing"]);
    // Sort keys of a frame (file names borrowed from it).
    let ints = |d: &DataFrame, c: &str| -> PolarsResult<Vec<i64>> {
        Ok(d.column(c)?.cast(&DataType::Int64)?.i64()?.iter().map(|v| v.unwrap_or(0)).collect())
    };
    type Keys = (Vec<i64>, StringChunked, Vec<i64>);
    let keys_of = |d: &DataFrame| -> PolarsResult<Keys> {
        Ok((ints(d, "ts_ms")?, d.column("file")?.str()?.clone(), ints(d, "line")?))
    };
    // Kinds in the order of their `record` names ("error" < "fpm" < "request"), which break
    // ties of time, file and line in the documented order. Kind 0 (errors) is a window of the
    // stream: the rows not yet written, refilled to at least a row group before each group.
    let mut errs = crate::aggregate::quiet::error_batches(ev, WRITE_BATCH).map_err(terr)?;
    let mut frames: [DataFrame; 3] = [ev.err.clear(), ev.fpm.clone(), ev.req.clone()];
    let mut keys: [Keys; 3] =
        [keys_of(&frames[0]).map_err(terr)?, keys_of(&frames[1]).map_err(terr)?, keys_of(&frames[2]).map_err(terr)?];
    let mut next = [0usize; 3];
    let mut errs_done = false;
    // Each row group: every kind's rows of the group (a contiguous range, since the merge
    // keeps each kind's order: a zero-copy slice, widened to all columns), stacked, then
    // gathered once into merged order.
    let wide = |d: &DataFrame, from: usize, n: usize| -> PolarsResult<DataFrame> {
        let part = d.slice(from as i64, n);
        let cols = names
            .iter()
            .map(|c| match part.column(c) {
                Ok(x) => Ok(x.clone()),
                Err(_) => Ok(Column::full_null((*c).into(), n, &column_type(c))),
            })
            .collect::<PolarsResult<Vec<Column>>>()?;
        DataFrame::new(n, cols)
    };
    let mut out: Option<BatchedParquet> = None;
    loop {
        // The error window: the unwritten rest, then batches until it holds a row group.
        if !errs_done && frames[0].height() - next[0] < WRITE_BATCH {
            let mut w = frames[0].slice(next[0] as i64, frames[0].height() - next[0]);
            while w.height() < WRITE_BATCH {
                match errs.next() {
                    Some(b) => w.vstack_mut_owned(b.map_err(terr)?).map_err(terr)?,
                    None => {
                        errs_done = true;
                        break;
                    }
                };
            }
            keys[0] = keys_of(&w).map_err(terr)?;
            frames[0] = w;
            next[0] = 0;
        }
        let key = |k: usize, i: usize| (keys[k].0[i], keys[k].1.get(i), keys[k].2[i], k);
        let start = next;
        let mut chunk: Vec<u8> = Vec::with_capacity(WRITE_BATCH);
        while chunk.len() < WRITE_BATCH {
            let k =
                (0..3).filter(|&k| next[k] < frames[k].height()).min_by(|&x, &y| key(x, next[x]).cmp(&key(y, next[y])));
            let Some(k) = k else { break };
            chunk.push(k as u8);
            next[k] += 1;
        }
        if chunk.is_empty() && out.is_some() {
            break;
        }
        let mut batch = wide(&frames[0], start[0], next[0] - start[0]).map_err(terr)?;
        for k in 1..3 {
            batch.vstack_mut_owned(wide(&frames[k], start[k], next[k] - start[k]).map_err(terr)?).map_err(terr)?;
        }
        // Row of each merged position in the stacked batch.
        let base = [0, next[0] - start[0], next[0] - start[0] + next[1] - start[1]];
        let mut seen = [0usize; 3];
        let perm: Vec<u32> = chunk
            .iter()
            .map(|&k| {
                let k = k as usize;
                seen[k] += 1;
                (base[k] + seen[k] - 1) as u32
            })
            .collect();
        let batch = batch.take(&IdxCa::from_vec("".into(), perm)).map_err(terr)?;
        if out.is_none() {
            out = Some(BatchedParquet::create(path, &batch)?);
        }
        out.as_mut().expect("created above").write(&batch)?;
        if chunk.len() < WRITE_BATCH {
            break;
        }
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
