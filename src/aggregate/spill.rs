//! A kind's held frame built a batch at a time, its bulk kept in a temporary file
//! (`events::events_frames`): failures grow with the input, and their frames (a 16-byte
//! string view per cell, null or not, and the strings) were most of the anonymous memory of
//! an 8 GiB run.
//!
//! Input: rows through `Batched::cells` (the `cells::Builder` of the current batch), then
//! `finish`. Output: the kind's frame, one chunk per column. A kind with more rows than
//! `SPILL_ROWS` is built `BATCH` rows at a time, each batch's string views, string bytes and
//! numbers written to an unlinked temporary file, and the frame's arrays are read from its
//! map: file-backed pages (the kernel can drop them and read them back), not anonymous
//! memory. Validity bitmaps and boolean columns (a bit per row) stay in memory.
//! Invariants: the frame holds the same values as the in-memory build (tests); the file is
//! scratch space, not an output (unlinked once mapped, like the quiet rows' file of
//! `scan::quiet`); a temporary file that cannot be created leaves the frame in memory (the
//! rows are all there either way); a write that fails is an error naming the file.

use super::cells::{column_type, in_column_type, Builder};
use crate::open::Haystack;
use polars::prelude::*;
use polars_arrow::array::{Array, BooleanArray, PrimitiveArray, Utf8ViewArray, View};
use polars_arrow::bitmap::{Bitmap, MutableBitmap};
use polars_arrow::datatypes::ArrowDataType;
use polars_buffer::Buffer;
use std::fs::File;
use std::marker::PhantomData;
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::sync::Arc;

/// Rows of a batch (a batch of each kind is in memory at once, about 2 MiB each).
const BATCH: usize = 4 << 10;
/// Kinds of at most this many rows are built in memory. Measured on the noisy 2 GiB bench
/// corpus (kinds of about 40 k rows): spilling them took the peak anonymous memory from 191
/// to 138 MiB, at the same time (alternated, 3 rounds); at 64 Ki rows they stayed in memory.
const SPILL_ROWS: usize = 16 << 10;
/// Offsets of the arrays in the file: the map is page-aligned, so every array is aligned
/// for its type (`bytemuck::cast_slice` checks it).
const ALIGN: u64 = 64;

/// A kind's frame under construction.
pub(super) struct Batched {
    names: Vec<&'static str>,
    cur: Builder,
    /// Rows in `cur`.
    n: usize,
    batch: usize,
    spill: Option<Spill>,
}

impl Batched {
    /// The frame of `rows` rows with columns `names` (of `cells::column_type`).
    pub(super) fn new(names: &[&'static str], rows: usize) -> Batched {
        Batched::with_sizes(names, rows, BATCH, SPILL_ROWS, &std::env::temp_dir())
    }

    /// `new` with the sizes and the file's directory given.
    pub(super) fn with_sizes(
        names: &[&'static str],
        rows: usize,
        batch: usize,
        spill_rows: usize,
        dir: &std::path::Path,
    ) -> Batched {
        let spill = (rows > spill_rows && batch > 0).then(|| Spill::new(names, rows, dir)).and_then(Result::ok);
        let batch = if spill.is_some() { batch } else { rows };
        Batched { names: names.to_vec(), cur: Builder::new(names, batch), n: 0, batch, spill }
    }

    /// The sink of the next row's cells; call `row_done` after them.
    pub(super) fn cells(&mut self) -> &mut Builder {
        &mut self.cur
    }

    pub(super) fn row_done(&mut self) -> PolarsResult<()> {
        self.n += 1;
        if let Some(s) = &mut self.spill {
            if self.n == self.batch {
                let full = std::mem::replace(&mut self.cur, Builder::new(&self.names, self.batch));
                s.write(&full.finish()?)?;
                self.n = 0;
            }
        }
        Ok(())
    }

    pub(super) fn finish(self) -> PolarsResult<DataFrame> {
        let last = self.cur.finish()?;
        match self.spill {
            None => Ok(last),
            Some(mut s) => {
                if last.height() > 0 {
                    s.write(&last)?;
                }
                s.finish()
            }
        }
    }
}

/// Where a column's data is in the file.
enum Col {
    /// Views at `views` (16 bytes a row), then each string buffer where it was written.
    Str {
        views: u64,
        bufs: Vec<(u64, usize)>,
        valid: MutableBitmap,
    },
    /// 8 bytes a row at `at` (the physical `i64` of integer and time columns, or `f64`).
    Num {
        at: u64,
        float: bool,
        valid: MutableBitmap,
    },
    Bool(Vec<BooleanArray>),
}

struct Spill {
    path: PathBuf,
    file: File,
    names: Vec<&'static str>,
    cols: Vec<Col>,
    rows: usize,
    /// Rows written.
    done: usize,
    /// Where the next string buffer goes.
    end: u64,
}

/// The error of a failed write to the file at `path`, naming it.
fn io_err(path: &std::path::Path) -> impl Fn(std::io::Error) -> PolarsError + Copy + '_ {
    move |e| polars_err!(ComputeError: "cannot write the temporary file of held rows {}: {e}", path.display())
}

fn align(x: u64) -> u64 {
    x.div_ceil(ALIGN) * ALIGN
}

impl Spill {
    fn new(names: &[&'static str], rows: usize, dir: &std::path::Path) -> std::io::Result<Spill> {
        static N: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let k = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let path = dir.join(format!("upcause-held-{}-{k}.tmp", std::process::id()));
        // Readable by this user only: the rows are log lines (client addresses, URLs).
        use std::os::unix::fs::OpenOptionsExt;
        let file = std::fs::OpenOptions::new().read(true).write(true).create_new(true).mode(0o600).open(&path)?;
        let mut end = 0;
        let cols = names
            .iter()
            .map(|name| {
                let fixed = |width: u64, end: &mut u64| {
                    let at = *end;
                    *end = align(at + width * rows as u64);
                    at
                };
                match column_type(name) {
                    DataType::String => {
                        Col::Str { views: fixed(16, &mut end), bufs: Vec::new(), valid: MutableBitmap::new() }
                    }
                    DataType::Boolean => Col::Bool(Vec::new()),
                    t => {
                        Col::Num { at: fixed(8, &mut end), float: t == DataType::Float64, valid: MutableBitmap::new() }
                    }
                }
            })
            .collect();
        Ok(Spill { path, file, names: names.to_vec(), cols, rows, done: 0, end })
    }

    /// Append a batch (columns `names`, in order, of `column_type`'s types).
    fn write(&mut self, df: &DataFrame) -> PolarsResult<()> {
        polars_ensure!(self.done + df.height() <= self.rows, ComputeError: "held rows: more rows than announced");
        let mut end = self.end;
        let (file, path) = (&self.file, &self.path);
        let io = io_err(path);
        for (col, name) in self.cols.iter_mut().zip(&self.names) {
            let c = df.column(name)?;
            let mut row = self.done as u64;
            match col {
                Col::Str { views, bufs, valid } => {
                    for arr in c.str()?.downcast_iter() {
                        // The batch's string buffers follow the others: its views' buffer
                        // numbers shift by the buffers already written.
                        let base = bufs.len() as u32;
                        for b in arr.data_buffers().iter() {
                            let at = align(end);
                            file.write_all_at(b.as_slice(), at).map_err(io)?;
                            bufs.push((at, b.len()));
                            end = at + b.len() as u64;
                        }
                        let shifted: Vec<View> = arr
                            .views()
                            .iter()
                            .map(|v| {
                                let mut v = *v;
                                if v.length > View::MAX_INLINE_SIZE {
                                    v.buffer_idx += base;
                                }
                                v
                            })
                            .collect();
                        file.write_all_at(bytemuck::cast_slice(&shifted), *views + 16 * row).map_err(io)?;
                        extend_validity(valid, arr.validity(), arr.len());
                        row += arr.len() as u64;
                    }
                }
                Col::Num { at, float, valid } => {
                    let s = c.as_materialized_series().to_physical_repr();
                    let mut put = |bytes: &[u8], v: Option<&Bitmap>, len: usize| -> PolarsResult<()> {
                        file.write_all_at(bytes, *at + 8 * row).map_err(io)?;
                        extend_validity(valid, v, len);
                        row += len as u64;
                        Ok(())
                    };
                    if *float {
                        for arr in s.f64()?.downcast_iter() {
                            put(bytemuck::cast_slice(arr.values().as_slice()), arr.validity(), arr.len())?;
                        }
                    } else {
                        for arr in s.i64()?.downcast_iter() {
                            put(bytemuck::cast_slice(arr.values().as_slice()), arr.validity(), arr.len())?;
                        }
                    }
                }
                Col::Bool(arrs) => arrs.extend(c.bool()?.downcast_iter().cloned()),
            }
        }
        self.end = end;
        self.done += df.height();
        Ok(())
    }

    /// The frame, its arrays read from the mapped file (unlinked here).
    fn finish(mut self) -> PolarsResult<DataFrame> {
        polars_ensure!(self.done == self.rows, ComputeError: "held rows: {} written of {}", self.done, self.rows);
        // A file of fewer bytes than written would make the arrays below fail their checks.
        self.file.set_len(align(self.end)).map_err(io_err(&self.path))?;
        let display = self.path.display().to_string();
        let mapped = Haystack::map_path(&self.path, &display);
        // Unlinked at once: the mapping keeps the bytes readable, and nothing is left behind.
        let _ = std::fs::remove_file(&self.path);
        self.path = PathBuf::new();
        let map = Arc::new(mapped.map_err(|e| polars_err!(ComputeError: "cannot read back {display}: {e}"))?);
        polars_ensure!(
            map.mapped().is_some_and(|m| m.len() as u64 >= self.end),
            ComputeError: "cannot read back {display}: shorter than written"
        );
        let n = self.rows;
        let cols = (std::mem::take(&mut self.cols).into_iter().zip(&self.names))
            .map(|(col, name)| {
                let name = PlSmallStr::from(*name);
                let c = match col {
                    Col::Str { views, bufs, valid } => {
                        let views = Buffer::from_owner(Mapped::<View>::new(&map, views, n));
                        let bufs: Vec<Buffer<u8>> = bufs
                            .into_iter()
                            .map(|(at, len)| Buffer::from_owner(Mapped::<u8>::new(&map, at, len)))
                            .collect();
                        let arr = Utf8ViewArray::try_new(
                            ArrowDataType::Utf8View,
                            views,
                            Buffer::from(bufs),
                            validity(valid),
                        )?;
                        StringChunked::with_chunk(name.clone(), arr).into_column()
                    }
                    Col::Num { at, float: true, valid } => {
                        let values = Buffer::from_owner(Mapped::<f64>::new(&map, at, n));
                        let arr = PrimitiveArray::try_new(ArrowDataType::Float64, values, validity(valid))?;
                        Float64Chunked::with_chunk(name.clone(), arr).into_column()
                    }
                    Col::Num { at, float: false, valid } => {
                        let values = Buffer::from_owner(Mapped::<i64>::new(&map, at, n));
                        let arr = PrimitiveArray::try_new(ArrowDataType::Int64, values, validity(valid))?;
                        Int64Chunked::with_chunk(name.clone(), arr).into_column()
                    }
                    Col::Bool(arrs) => {
                        BooleanChunked::from_chunk_iter(name.clone(), arrs).rechunk().into_owned().into_column()
                    }
                };
                in_column_type(c)
            })
            .collect::<PolarsResult<Vec<_>>>()?;
        DataFrame::new(n, cols)
    }
}

impl Drop for Spill {
    /// A spill given up before `finish` (a failed write, an error building a row) leaves no
    /// file behind either.
    fn drop(&mut self) {
        if !self.path.as_os_str().is_empty() {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

fn extend_validity(valid: &mut MutableBitmap, v: Option<&Bitmap>, len: usize) {
    match v {
        Some(b) => valid.extend_from_bitmap(b),
        None => valid.extend_constant(len, true),
    }
}

fn validity(valid: MutableBitmap) -> Option<Bitmap> {
    (valid.unset_bits() > 0).then(|| valid.freeze())
}

/// `len` values of `T` at byte `at` of the map: the owner of an array's buffer.
struct Mapped<T> {
    map: Arc<Haystack>,
    at: usize,
    len: usize,
    t: PhantomData<T>,
}

impl<T> Mapped<T> {
    fn new(map: &Arc<Haystack>, at: u64, len: usize) -> Mapped<T> {
        Mapped { map: map.clone(), at: at as usize, len, t: PhantomData }
    }
}

impl<T: bytemuck::Pod> AsRef<[T]> for Mapped<T> {
    fn as_ref(&self) -> &[T] {
        // In bounds and aligned: `Spill::finish` checked the map's length, and every array
        // starts at a multiple of `ALIGN` of a page-aligned map.
        let bytes = self.map.mapped().unwrap_or(&[]);
        bytemuck::cast_slice(&bytes[self.at..self.at + self.len * std::mem::size_of::<T>()])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aggregate::cells::{Cells, BOOL_COLS, F64_COLS, INT_COLS, STR_COLS};

    /// Rows with every column type, nulls, inline and out-of-line strings, built in memory
    /// and spilled in batches of 7: the same frame.
    #[test]
    fn spilled_frames_equal_the_in_memory_build() {
        let names: Vec<&'static str> = ["ts", "ts_ms", "message", "cause", "failure", "request_time", "file"]
            .into_iter()
            .filter(|c| {
                STR_COLS.contains(c)
                    || INT_COLS.contains(c)
                    || F64_COLS.contains(c)
                    || BOOL_COLS.contains(c)
                    || *c == "ts"
            })
            .collect();
        assert_eq!(names.len(), 7, "the columns named exist in the wide table");
        let k = |list: &[&str], c: &str| list.iter().position(|x| *x == c).unwrap();
        let build = |b: &mut Batched, rows: usize| {
            for i in 0..rows {
                let c = b.cells();
                c.row();
                c.i(k(INT_COLS, "ts_ms"), Some(1_700_000_000_000 + i as i64));
                if i % 3 != 0 {
                    let long = format!("a message long enough to live out of line, row {i}");
                    c.s(k(STR_COLS, "message"), Some(long));
                }
                c.s(k(STR_COLS, "cause"), Some(if i % 2 == 0 { "short" } else { "fpm_request_terminated" }));
                c.b(k(BOOL_COLS, "failure"), i % 5 == 0);
                if i % 4 != 1 {
                    c.f(k(F64_COLS, "request_time"), Some(i as f64 / 8.0));
                }
                if i % 11 == 0 {
                    c.s(k(STR_COLS, "file"), Some("/var/log/nginx/error.log.2.gz"));
                }
                b.row_done().unwrap();
            }
        };
        let tmp = std::env::temp_dir();
        for rows in [0, 1, 7, 8, 50, 301] {
            let mut mem = Batched::with_sizes(&names, rows, 7, usize::MAX, &tmp);
            build(&mut mem, rows);
            let mem = mem.finish().unwrap();
            let mut spilled = Batched::with_sizes(&names, rows, 7, 0, &tmp);
            assert_eq!(spilled.spill.is_some(), rows > 0, "rows: {rows}");
            build(&mut spilled, rows);
            let spilled = spilled.finish().unwrap();
            assert_eq!(mem.height(), rows);
            assert_eq!(mem.schema(), spilled.schema());
            assert!(mem.equals_missing(&spilled), "rows: {rows}\n{mem}\n{spilled}");
            // A directory that cannot hold the file: the frame is built in memory, whole.
            let mut kept = Batched::with_sizes(&names, rows, 7, 0, &tmp.join("upcause-no-such-dir/x"));
            assert!(kept.spill.is_none());
            build(&mut kept, rows);
            assert!(mem.equals_missing(&kept.finish().unwrap()), "rows: {rows}");
        }
        // A spill given up half-way (an error elsewhere drops it) removes its file too.
        let mut dropped = Batched::with_sizes(&names, 301, 7, 0, &tmp);
        build(&mut dropped, 20);
        assert!(dropped.spill.as_ref().is_some_and(|s| s.done == 14 && s.path.exists()));
        drop(dropped);
        // Nothing is left behind in the directory.
        let left = std::fs::read_dir(&tmp)
            .unwrap()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().starts_with(&format!("upcause-held-{}-", std::process::id())))
            .count();
        assert_eq!(left, 0);
    }
}
