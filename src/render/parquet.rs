//! The Parquet files of a run directory: `events.parquet` (the three event kinds merged in
//! time order, a row group at a time) and `counters/*.parquet`.
//!
//! Input: the run's event tables and counters (`aggregate`). Output: files, each written to a
//! temporary name and renamed when complete. Invariants: every file output of a run lives in
//! `render` (`aggregate` builds tables and never writes); the wide events table is never
//! whole in memory; a row group is encoded and compressed here, its columns in parallel, with
//! polars-parquet's own functions and the options polars' `ParquetWriter` uses, so the bytes
//! are those polars' `write_batch` writes (`BatchedParquet`).

use super::{io_err, table_err, RenderError};
use crate::aggregate::events::Events;
use crate::aggregate::run::counter_batches;
use crate::aggregate::wide::Groups;
use crate::scan::traffic::Traffic;
use polars::io::parquet::write::get_encodings;
use polars::prelude::*;
use polars_arrow::array::{Array, ArrayRef, DictionaryArray, PrimitiveArray, Utf8ViewArray};
use polars_arrow::datatypes::{ArrowDataType, IntegerType};
use polars_parquet::parquet::compression::Compression;
use polars_parquet::parquet::page::{CompressedDataPage, CompressedDictPage, DataPageHeader};
use polars_parquet::parquet::CowBuffer;
use polars_parquet::write::{
    array_to_columns, compress, CompressedPage, CompressionOptions, Encoding, Page, ParquetType, StatisticsOptions,
    Version, WriteOptions,
};
use polars_utils::compression::ZstdLevel;
use std::path::Path;

/// Rows per row group of `events.parquet`: two are in memory at once (one encoded while the
/// next is built). Measured on the noisy 2 GiB bench corpus (alternated, 2 threads): 16 Ki
/// rows 3.27 s and 198 MiB anonymous at the peak, 12 Ki 3.24 s and 190 MiB, 8 Ki 3.41 s and
/// 182 MiB (more pages, each with its own compression context and dictionary estimate).
const WRITE_BATCH: usize = 12 << 10;

/// Write `events.parquet`: the three kinds merged in (ts_ms, file, line, record) order, with
/// every column of `EVENT_COLUMNS` (then `incident`, `contributing`), null where a kind has
/// none, a row group at a time (`aggregate::wide::Groups`): the wide table is never whole in
/// memory.
pub fn write_events_parquet(ev: &Events, path: &Path) -> Result<(), RenderError> {
    let terr = |e| table_err("events.parquet")(e);
    let mut groups = Groups::new(ev, WRITE_BATCH).map_err(terr)?;
    let mut out: Option<BatchedParquet> = None;
    let mut cur = groups.next_group().map_err(terr)?;
    while let Some(batch) = cur {
        let w = match &mut out {
            Some(w) => w,
            None => out.insert(BatchedParquet::create(path, &batch)?),
        };
        // This row group is encoded while the next is built (the merge and the quiet rows'
        // cells are a third of the work): two cores at once on the longest report file.
        let (written, next) = rayon::join(|| w.write(&batch), || groups.next_group());
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
/// `finish`), compressed with zstd at level 1: on the noisy 2 GiB bench corpus
/// `events.parquet` came out smaller than at polars' default level 3 (11.66 MB against
/// 11.94) and 0.03 s sooner; LZ4 was 0.1 s sooner but 58% larger (18.9 MB).
///
/// A row group's columns are encoded and their pages compressed in parallel here, then
/// handed to polars' writer whole (`write_row_group`): its own `write_batch` encodes the
/// columns in parallel but compresses every page one after the other, under its lock, as it
/// writes them. The functions and options are the writer's own (`array_to_columns`,
/// `compress`, the options `ParquetWriter` gives them), so the file is byte for byte the one
/// `write_batch` wrote.
pub struct BatchedParquet {
    w: polars::io::parquet::write::BatchedWriter<std::fs::File>,
    fields: Vec<ParquetType>,
    encodings: Vec<Vec<Encoding>>,
    options: WriteOptions,
    tmp: std::path::PathBuf,
    path: std::path::PathBuf,
}

impl BatchedParquet {
    /// Create the file with the schema of `first` (not yet written).
    pub fn create(path: &Path, first: &DataFrame) -> Result<Self, RenderError> {
        let perr = |e| table_err(&path.display().to_string())(e);
        let tmp = path.with_extension("tmp~");
        let f = std::fs::File::create(&tmp).map_err(io_err(&tmp))?;
        let zstd = ParquetCompression::Zstd(Some(ZstdLevel::try_new(1).map_err(table_err("zstd level"))?));
        let mut w = ParquetWriter::new(f).with_compression(zstd).batched(first.schema()).map_err(perr)?;
        let fields = w.parquet_schema().fields().to_vec();
        let encodings = get_encodings(&first.schema().to_arrow(CompatLevel::newest())).to_vec();
        // What `ParquetWriter` gives its writer when only the compression is set.
        let options = WriteOptions {
            statistics: StatisticsOptions::default(),
            compression: zstd.into(),
            version: Version::V1,
            data_page_size: None,
        };
        Ok(BatchedParquet { w, fields, encodings, options, tmp, path: path.to_path_buf() })
    }

    /// Write `df` as one row group per chunk (the frames given here have one).
    pub fn write(&mut self, df: &DataFrame) -> Result<(), RenderError> {
        let perr = |e| table_err(&self.path.display().to_string())(e);
        for batch in df.iter_chunks(CompatLevel::newest(), false) {
            if batch.is_empty() {
                continue;
            }
            let columns = self.encode(batch.columns()).map_err(perr)?;
            self.w.write_row_group(batch.len() as u64, &columns).map_err(perr)?;
        }
        Ok(())
    }

    /// Each column's pages, encoded and compressed, the columns in parallel.
    fn encode(&self, arrays: &[ArrayRef]) -> PolarsResult<Vec<Vec<CompressedPage>>> {
        use rayon::prelude::*;
        let per_array = arrays
            .par_iter()
            .zip(&self.fields)
            .zip(&self.encodings)
            .map(|((a, field), enc)| -> PolarsResult<Vec<Vec<CompressedPage>>> {
                // A string column of few values goes in as the dictionary array the writer
                // would cast it to (same pages); any other column as it is.
                let few = match enc.as_slice() {
                    [Encoding::RleDictionary] => a.as_any().downcast_ref::<Utf8ViewArray>().and_then(few_valued),
                    _ => None,
                };
                let a: &dyn Array = match &few {
                    Some(d) => d,
                    None => a.as_ref(),
                };
                array_to_columns(a, field.clone(), self.options, enc)?
                    .into_iter()
                    .map(|pages| pages.map(|p| compress_page(p?, self.options.compression)).collect())
                    .collect()
            })
            .collect::<PolarsResult<Vec<_>>>()?;
        Ok(per_array.into_iter().flatten().collect())
    }

    pub fn finish(self) -> Result<(), RenderError> {
        self.w.finish().map_err(table_err(&self.path.display().to_string()))?;
        std::fs::rename(&self.tmp, &self.path).map_err(io_err(&self.path))
    }
}

/// Most distinct values `few_valued` takes. The writer dictionary-encodes a string column when
/// it has at most 128 rows or its estimated distinct count (HyperLogLog, 2^14 registers) is at
/// most 0.75 of its rows: 64 values in more than 128 rows is under 0.5 of them, and the
/// estimate of so few values is within a value or two of the count (with most registers
/// empty it is linear counting, which two values sharing a register can only lower), so the
/// writer would choose the dictionary for every column `few_valued` converts.
const FEW: usize = 64;

/// `a` (a string column of at most `FEW` distinct values) as the dictionary array
/// polars-parquet's writer casts it to before writing its dictionary page and keys (`cast` to
/// `Dictionary(UInt32, Utf8View)`: the values in order of first occurrence, a null's key 0, no
/// validity when nothing is null), built with a run check and a small table instead of two
/// hashes of every string (the writer's cardinality estimate, then its cast): the same array,
/// so the same pages. None past `FEW` values: the writer's own path then decides.
fn few_valued(a: &Utf8ViewArray) -> Option<DictionaryArray<u32>> {
    // Slots of a table of at most FEW values (a quarter full at most), each the value's number
    // plus one (0: empty).
    let mut slots = [0u8; 256];
    let mut values: Vec<&str> = Vec::new();
    let mut keys: Vec<u32> = Vec::with_capacity(a.len());
    // Equal views are equal strings (inline bytes, or the same place in the same buffer):
    // rows of one kind come in runs.
    let mut last: Option<(u128, u32)> = None;
    for (i, view) in a.views().iter().enumerate() {
        if !a.is_valid(i) {
            keys.push(0);
            continue;
        }
        let bits = view.as_u128();
        if let Some((b, k)) = last {
            if b == bits {
                keys.push(k);
                continue;
            }
        }
        let v = a.value(i);
        let mut h = slot_of(v.as_bytes());
        let k = loop {
            match slots[h] {
                0 if values.len() == FEW => return None,
                0 => {
                    values.push(v);
                    slots[h] = values.len() as u8;
                    break values.len() - 1;
                }
                n if values[n as usize - 1] == v => break n as usize - 1,
                _ => h = (h + 1) & 255,
            }
        } as u32;
        last = Some((bits, k));
        keys.push(k);
    }
    let validity = if a.null_count() > 0 { a.validity().cloned() } else { None };
    let keys = PrimitiveArray::new(ArrowDataType::UInt32, keys.into(), validity);
    let dtype = ArrowDataType::Dictionary(IntegerType::UInt32, Box::new(ArrowDataType::Utf8View), false);
    DictionaryArray::try_new(dtype, keys, Utf8ViewArray::from_slice_values(&values).boxed()).ok()
}

/// A slot of `few_valued`'s table for string `b`: its length and first and last eight bytes
/// mixed (values of one column often share a prefix).
fn slot_of(b: &[u8]) -> usize {
    let word = |s: &[u8]| s.iter().take(8).fold(0u64, |w, &c| (w << 8) | c as u64);
    let tail = &b[b.len().saturating_sub(8)..];
    let x = (b.len() as u64) ^ word(b).rotate_left(5) ^ word(tail).wrapping_mul(0x2545_f491_4f6c_dd1d);
    (x.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 56) as usize
}

thread_local! {
    /// A zstd context per thread, kept from page to page: `compress` makes a new one for every
    /// page (`zstd::bulk::compress_to_buffer`), and creating it was 3% of the tail's samples
    /// on the noisy 2 GiB corpus (`ZSTD_createCCtx`). The level it was made for goes with it.
    static ZSTD: std::cell::RefCell<Option<(i32, zstd::bulk::Compressor<'static>)>> =
        const { std::cell::RefCell::new(None) };
}

/// `page` compressed as polars-parquet's `compress` does it (the same page, header and sizes;
/// the same zstd call, whose output does not depend on the context being new), with this
/// thread's zstd context. Anything but zstd and version-1 data pages goes to `compress`.
fn compress_page(page: Page, options: CompressionOptions) -> PolarsResult<CompressedPage> {
    let CompressionOptions::Zstd(level) = options else {
        return Ok(compress(page, Vec::new(), options)?);
    };
    let level = level.map(|v| v.compression_level()).unwrap_or_default();
    let zstd = |src: &[u8]| -> std::io::Result<Vec<u8>> {
        ZSTD.with_borrow_mut(|slot| {
            let c = match slot {
                Some((l, c)) if *l == level => c,
                _ => &mut slot.insert((level, zstd::bulk::Compressor::new(level)?)).1,
            };
            let mut out = Vec::with_capacity(zstd::zstd_safe::compress_bound(src.len()));
            c.compress_to_buffer(src, &mut out)?;
            Ok(out)
        })
    };
    Ok(match page {
        Page::Data(p) => match (p.header(), p.num_rows) {
            (DataPageHeader::V1(_), Some(rows)) => CompressedPage::Data(CompressedDataPage::new(
                p.header().clone(),
                CowBuffer::Owned(zstd(p.buffer())?),
                Compression::Zstd,
                p.buffer().len(),
                p.descriptor.clone(),
                rows,
            )),
            _ => compress(Page::Data(p), Vec::new(), options)?,
        },
        Page::Dict(d) => CompressedPage::Dict(CompressedDictPage::new(
            CowBuffer::Owned(zstd(&d.buffer)?),
            Compression::Zstd,
            d.buffer.len(),
            d.num_values,
            d.is_sorted,
        )),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aggregate::run::{counter_batches, read_parquet, traffic_from_frames, COUNTER_BATCH};
    use crate::scan::layout::Metric;
    use polars_arrow::array::MutableBinaryViewArray;
    use std::collections::HashMap;

    /// The file `BatchedParquet` writes (columns encoded and compressed in parallel, pages
    /// compressed with a kept zstd context, string columns of few values given as
    /// dictionaries) is byte for byte the one polars' own batched writer writes with the same
    /// compression: strings of few values (inline and not, `FEW` of them, one more), of many
    /// values (dictionary and plain pages), nulls, an all-null column, integers, floats,
    /// booleans, three row groups (one of at most 128 rows), and a page past the default
    /// 1 MiB page size.
    #[test]
    fn batched_parquet_writes_polars_own_bytes() {
        let frame = |k: usize, n: usize| -> DataFrame {
            let few: Vec<Option<&str>> =
                (0..n).map(|i| [Some("error"), Some("fpm"), None, Some("request")][(i + k) % 4]).collect();
            let many: Vec<Option<String>> = (0..n)
                .map(|i| (i % 7 != 3).then(|| format!("/api/v{}/items/{}?q={}", k, i * 7919 % 100_003, i)))
                .collect();
            // Few values longer than a view's 12 inline bytes, sharing a prefix, in runs and
            // not; then one value more than `few_valued` takes, and exactly as many as it takes.
            let causes = ["fpm_request_terminate_timeout", "fpm_max_children_reached", "fpm_pool_down"];
            let long: Vec<Option<&str>> =
                (0..n).map(|i| (i % 11 != 5).then_some(causes[(i / 3 + i % 2 + k) % 3])).collect();
            let over: Vec<String> = (0..n).map(|i| format!("host-{}", (i * 7 + k) % (FEW + 1))).collect();
            let at: Vec<String> = (0..n).map(|i| format!("h{}", (i * 13 + k) % FEW)).collect();
            let none: Vec<Option<&str>> = vec![None; n];
            let big: Vec<String> = (0..n).map(|i| format!("{:0>200}", i * 31 + k)).collect();
            let ints: Vec<Option<i64>> = (0..n).map(|i| (i % 5 != 0).then_some((i * k) as i64 - 40)).collect();
            let floats: Vec<f64> = (0..n).map(|i| i as f64 / 7.0).collect();
            let flags: Vec<bool> = (0..n).map(|i| i % 3 == 0).collect();
            DataFrame::new(
                n,
                vec![
                    Column::new("few".into(), few),
                    Column::new("many".into(), many),
                    Column::new("long".into(), long),
                    Column::new("over".into(), over),
                    Column::new("at".into(), at),
                    Column::new("none".into(), none),
                    Column::new("big".into(), big),
                    Column::new("ints".into(), ints),
                    Column::new("floats".into(), floats),
                    Column::new("flags".into(), flags),
                ],
            )
            .unwrap()
        };
        // A row group of at most 128 rows is dictionary-encoded whatever its values.
        let frames = [frame(1, 9_000), frame(2, 700), frame(3, 100)];
        let dir = std::env::temp_dir().join(format!("upcause-parquet-bytes-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let ours = dir.join("ours.parquet");
        let mut w = BatchedParquet::create(&ours, &frames[0]).unwrap();
        for f in &frames {
            w.write(f).unwrap();
        }
        w.finish().unwrap();
        let theirs = dir.join("theirs.parquet");
        let zstd = ParquetCompression::Zstd(Some(ZstdLevel::try_new(1).unwrap()));
        let mut p = ParquetWriter::new(std::fs::File::create(&theirs).unwrap())
            .with_compression(zstd)
            .batched(frames[0].schema())
            .unwrap();
        for f in &frames {
            p.write_batch(f).unwrap();
        }
        p.finish().unwrap();
        let (a, b) = (std::fs::read(&ours).unwrap(), std::fs::read(&theirs).unwrap());
        assert!(a.len() > 50_000, "{} bytes", a.len());
        assert!(a == b, "{} bytes against polars' {}", a.len(), b.len());
        assert_eq!(read_parquet(&ours).unwrap().height(), 9_800);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// `few_valued` takes up to `FEW` distinct values (nulls are none of them), in order of
    /// first occurrence, and gives up past them.
    #[test]
    fn few_valued_stops_past_few_values() {
        let col = |n: usize| -> Utf8ViewArray {
            let v: Vec<Option<String>> =
                (0..1_000).map(|i| (i % 9 != 0).then(|| format!("a fairly long value {}", (n - 1) - i % n))).collect();
            MutableBinaryViewArray::<str>::from_iter(v.iter().map(|s| s.as_deref())).into()
        };
        let d = few_valued(&col(FEW)).expect("FEW values");
        assert_eq!(d.values().len(), FEW);
        let values = d.values().as_any().downcast_ref::<Utf8ViewArray>().unwrap();
        assert_eq!(values.value(0), format!("a fairly long value {}", FEW - 2));
        assert_eq!(d.keys().null_count(), col(FEW).null_count());
        assert!(few_valued(&col(FEW + 1)).is_none());
    }

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
