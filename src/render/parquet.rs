//! The Parquet files of a run directory: `events.parquet` (the three event kinds merged in
//! time order, a row group at a time) and `counters/*.parquet`.
//!
//! Input: the run's event tables and counters (`aggregate`). Output: files, each written to a
//! temporary name and renamed when complete. Invariants: every file output of a run lives in
//! `render` (`aggregate` builds tables and never writes); the wide events table is never
//! whole in memory; a row group is encoded and compressed here, its columns in parallel, with
//! polars-parquet's own functions and the options polars' `ParquetWriter` uses, so the bytes
//! are those polars' `write_batch` writes (`BatchedParquet`).

use super::rle::Dict;
use super::{io_err, table_err, RenderError};
use crate::aggregate::events::Events;
use crate::aggregate::run::counter_batches;
use crate::aggregate::wide::Groups;
use crate::scan::traffic::Traffic;
use polars::io::parquet::write::get_encodings;
use polars::prelude::*;
use polars_arrow::array::{Array, ArrayRef, PrimitiveArray, Utf8ViewArray};
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
                // A column the writer surely dictionary-encodes (few strings, a narrow range of
                // integers) goes in as the dictionary array it would make (same pages); any
                // other column as it is.
                let few = match enc.as_slice() {
                    [Encoding::RleDictionary] => dictionary_of(a.as_ref()),
                    _ => None,
                };
                let compressed = |pages: &mut dyn Iterator<Item = PolarsResult<Page>>| {
                    pages.map(|p| compress_page(p?, self.options.compression)).collect()
                };
                // Its levels and keys encoded by `rle` (the writer's bytes; its own encoding of
                // them was a fifth of `events.parquet`'s instructions).
                if let Some(d) = &few {
                    if let Some(pages) = super::rle::dictionary_pages(d, field, self.options, enc)? {
                        return Ok(vec![compressed(&mut pages.into_iter().map(Ok))?]);
                    }
                }
                let whole = few.as_ref().and_then(Dict::array);
                let a: &dyn Array = match &whole {
                    Some(d) => d,
                    None => a.as_ref(),
                };
                array_to_columns(a, field.clone(), self.options, enc)?
                    .into_iter()
                    .map(|mut p| compressed(&mut p))
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

/// The dictionary array the writer would make of `a` itself, where it is sure to: a string
/// column of few values (`few_valued`), an integer column of a narrow range
/// (`rle::int_dictionary`).
fn dictionary_of(a: &dyn Array) -> Option<Dict> {
    let any = a.as_any();
    if let Some(s) = any.downcast_ref::<Utf8ViewArray>() {
        return few_valued(s);
    }
    macro_rules! ints {
        ($($t:ty),+) => {$(
            if let Some(p) = any.downcast_ref::<PrimitiveArray<$t>>() {
                return super::rle::int_dictionary(p);
            }
        )+};
    }
    ints!(i64, u64, i32, u32);
    None
}

/// Most distinct values `few_valued` takes: a string column goes to the writer as a dictionary
/// when the writer would surely make that dictionary itself. It does for a row group of at
/// most 128 rows, or when its estimated distinct count (`polars_compute::cardinality`: a
/// HyperLogLog of m = 2^14 registers, Ertl's estimator, a null counted as the empty string)
/// is at most 0.75 of the rows. With d distinct values at most d registers are set, and a set
/// register only adds to the estimator's denominator: the estimate is at most
/// `estimate_bound(d)`, the estimator with every set register's term left out (1.035 d at
/// d = 1,025; 1.25 d at 5,000). `values_cap` turns that into the most values a column of so
/// many rows may have.
const FEW: usize = 6144;

/// Slots of `few_valued`'s table: at most 3/8 full.
const SLOTS: usize = 16384;

/// An upper bound of polars-parquet's cardinality estimate for `d` distinct values (`d` < m):
/// `0.5 / ln 2 * m^2 / z` with `z` only its `m * sigma(zeros / m)` term, at the fewest zero
/// registers, `m - d` (sigma grows with its argument). `sigma` as in `hyperloglogplus.rs`.
fn estimate_bound(d: usize) -> f64 {
    const M: f64 = 16384.0;
    let mut x = (M - d as f64) / M;
    let (mut y, mut z) = (1.0, x);
    if x >= 1.0 {
        return 0.0;
    }
    loop {
        x *= x;
        let before = z;
        z += x * y;
        y += y;
        if before == z {
            break;
        }
    }
    0.5 / std::f64::consts::LN_2 * M / z
}

/// The most distinct values (`FEW` at most) a string column of `rows` rows may have for the
/// writer to choose its dictionary surely: any for 128 rows or fewer, else the most `d` whose
/// bound (for `d + 1`: a null may count as one more), rounded and with a margin of a value,
/// stays within 0.75 of the rows.
fn values_cap(rows: usize) -> usize {
    if rows <= 128 {
        return FEW;
    }
    let fits = |d: usize| estimate_bound(d + 1) + 1.0 <= 0.75 * rows as f64;
    // The bound grows with `d`: the last `d` that fits, by bisection.
    let (mut lo, mut hi) = (0usize, FEW + 1);
    if !fits(0) {
        return 0;
    }
    while hi - lo > 1 {
        let mid = (lo + hi) / 2;
        if fits(mid) {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    lo
}

/// `a` (a string column of at most `values_cap` distinct values) as the dictionary array
/// polars-parquet's writer casts it to before writing its dictionary page and keys (`cast` to
/// `Dictionary(UInt32, Utf8View)`: the values in order of first occurrence, a null's key 0, no
/// validity when nothing is null), built with a run check and a table instead of two hashes of
/// every string (the writer's cardinality estimate, then its cast): the same array, so the
/// same pages. None otherwise: the writer's
/// own path then decides. (At most 64 values before: the columns of hundreds or thousands of
/// values, a URI, a request, a message, went through the writer's estimate and cast, 0.65 G
/// instructions of the noisy 2 GiB corpus.)
fn few_valued(a: &Utf8ViewArray) -> Option<Dict> {
    let cap = values_cap(a.len());
    // Each slot the value's number plus one (0: empty).
    let mut slots = vec![0u16; SLOTS];
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
                0 if values.len() == cap => return None,
                0 => {
                    values.push(v);
                    slots[h] = values.len() as u16;
                    break values.len() - 1;
                }
                n if values[n as usize - 1] == v => break n as usize - 1,
                _ => h = (h + 1) % SLOTS,
            }
        } as u32;
        last = Some((bits, k));
        keys.push(k);
    }
    let validity = if a.null_count() > 0 { a.validity().cloned() } else { None };
    Some(Dict::new(keys, validity, Utf8ViewArray::from_slice_values(&values).boxed()))
}

/// A slot of `few_valued`'s table for string `b`: Fx's hash (the project's hash for its
/// tallies) of every byte (values of one column often share a prefix and a suffix: URIs,
/// addresses).
fn slot_of(b: &[u8]) -> usize {
    use std::hash::Hasher;
    let mut h = rustc_hash::FxHasher::default();
    h.write(b);
    h.finish() as usize % SLOTS
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
    use crate::aggregate::run::{counter_batches, read_parquet, traffic_from_tables, COUNTER_BATCH};
    use crate::scan::layout::Metric;
    use polars_arrow::array::MutableBinaryViewArray;
    use std::collections::HashMap;

    /// The file `BatchedParquet` writes (columns encoded and compressed in parallel, pages
    /// compressed with a kept zstd context, columns the writer surely dictionary-encodes given
    /// as dictionaries, their levels and keys encoded by `rle`) is byte for byte the one
    /// polars' own batched writer writes with the same compression: strings of few values
    /// (inline and not, `FEW` of them, one more; 64 and 300 sharing their first and last
    /// bytes; in 6 of 7 rows), of many values (dictionary and plain pages), nulls, an all-null
    /// column, integers (of few values, with nulls and without, filling their range or not; of
    /// too many: plain), floats, booleans, three row groups (one of at most 128 rows), and a
    /// page past the default 1 MiB page size.
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
            // Values sharing their first and last bytes: 64 of them, and 300 (under half the
            // rows of the 700-row group: taken; over it in the 100-row group's... at most 128).
            let uris: Vec<String> = (0..n).map(|i| format!("/product/{:05}?ref=home", (i * 31 + k) % 64)).collect();
            let mid: Vec<Option<String>> =
                (0..n).map(|i| (i % 13 != 0).then(|| format!("/item/{:05}/x", (i * 17 + k) % 300))).collect();
            // Distinct values in 6 of 7 rows: in the 700-row group 601, at most `FEW` but past
            // the writer's 0.75 (plain pages there; a dictionary would differ).
            let most: Vec<String> = (0..n).map(|i| format!("c{}", (i * 3 + k) % (n * 6 / 7 + 1))).collect();
            let none: Vec<Option<&str>> = vec![None; n];
            let big: Vec<String> = (0..n).map(|i| format!("{:0>200}", i * 31 + k)).collect();
            let ints: Vec<Option<i64>> = (0..n).map(|i| (i % 5 != 0).then_some((i * k) as i64 - 40)).collect();
            // Integers of a narrow range, dictionary-encoded by the writer: statuses with nulls
            // in runs, in runs long and short; bins without nulls; a range of 60,000 values
            // in 9,000 rows (few distinct), distinct values past 0.75 of the rows (plain), and
            // counts filling their range 3..=7.
            let codes: Vec<Option<i64>> = (0..n)
                .map(|i| ((i / 40) % 3 != 1).then_some([200, 502, 504, 499][(i / (1 + i % 17) + k) % 4]))
                .collect();
            let bins: Vec<u32> = (0..n).map(|i| ((i * i + k) % 37) as u32 + if i % 100 < 30 { 0 } else { 7 }).collect();
            let wide: Vec<u64> = (0..n).map(|i| ((i * 7) % 9 * 7_500 + k) as u64).collect();
            let spread: Vec<i32> = (0..n).map(|i| (i * 13 % (n * 9 / 10 + 1)) as i32 - 5).collect();
            // Every value of a range present, no nulls (a counter column): keys by subtraction.
            let counts: Vec<u32> = (0..n).map(|i| 3 + ((i * 7 + k) % 11 / 3) as u32 + (i % 5 == 0) as u32).collect();
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
                    Column::new("uris".into(), uris),
                    Column::new("mid".into(), mid),
                    Column::new("most".into(), most),
                    Column::new("none".into(), none),
                    Column::new("big".into(), big),
                    Column::new("ints".into(), ints),
                    Column::new("codes".into(), codes),
                    Column::new("bins".into(), bins),
                    Column::new("wide".into(), wide),
                    Column::new("spread".into(), spread),
                    Column::new("counts".into(), counts),
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

    /// `few_valued` takes up to `values_cap` distinct values (nulls are none of them), in order
    /// of first occurrence, and gives up past them; the cap keeps the writer's estimate within
    /// 0.75 of the rows with room to spare (a row group of `WRITE_BATCH` rows: 5,000 to `FEW`).
    #[test]
    fn few_valued_stops_past_few_values() {
        let col = |n: usize, rows: usize| -> Utf8ViewArray {
            let v: Vec<Option<String>> =
                (0..rows).map(|i| (i % 9 != 0).then(|| format!("a fairly long value {}", (n - 1) - i % n))).collect();
            MutableBinaryViewArray::<str>::from_iter(v.iter().map(|s| s.as_deref())).into()
        };
        let d = few_valued(&col(FEW, 3 * FEW)).expect("FEW values");
        assert_eq!(d.values().len(), FEW);
        let values = d.values().as_any().downcast_ref::<Utf8ViewArray>().unwrap();
        assert_eq!(values.value(0), format!("a fairly long value {}", FEW - 2));
        assert_eq!(d.null_count(), col(FEW, 3 * FEW).null_count());
        assert!(few_valued(&col(FEW + 1, 3 * FEW)).is_none());
        // Any number of values in 128 rows (120, some only where the column is null).
        assert_eq!(values_cap(128), FEW);
        assert!(few_valued(&col(120, 128)).is_some_and(|d| 2 * d.values().len() > 128));
        // At the cap of 1,000 rows and one past it; the estimate's bound at the cap.
        let cap = values_cap(1_000);
        assert!((600..750).contains(&cap), "{cap}");
        assert!(estimate_bound(cap + 1) + 1.0 <= 750.0 && estimate_bound(cap + 2) + 1.0 > 750.0);
        let plain = |n: usize| -> Utf8ViewArray {
            let v: Vec<String> = (0..1_000).map(|i| format!("v{}", i % n)).collect();
            MutableBinaryViewArray::<str>::from_iter(v.iter().map(|s| Some(s.as_str()))).into()
        };
        assert_eq!(few_valued(&plain(cap)).map(|d| d.values().len()), Some(cap));
        assert!(few_valued(&plain(cap + 1)).is_none());
        assert!((5_000..=FEW).contains(&values_cap(WRITE_BATCH)), "{}", values_cap(WRITE_BATCH));
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
        assert_eq!(read_parquet(&dir.join("seconds.parquet")).unwrap().height(), n as usize);
        let back = traffic_from_tables(|n| read_parquet(&dir.join(format!("{n}.parquet")))).unwrap();
        assert_eq!(back.per_sec, t.per_sec);
        assert_eq!(back.lat, t.lat);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
