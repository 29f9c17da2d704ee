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
//! scratch space, not an output (unlinked as soon as it is created, like the quiet rows' file
//! of `scan::quiet`: a run killed half-way leaves nothing behind); a temporary file that cannot be created leaves the frame in memory (the
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

/// A frame stacked from frames of at most `rows` rows in all, its bulk in the temporary file
/// as `Batched` keeps a built frame's: `merge`'s held rows, which come as frames (a stored
/// run's rows, a sorted gather of them). Frames whose columns are not the wide table's, of
/// its types (`column_type`), are stacked in memory.
pub(super) struct Stacked {
    spill: Option<Spill>,
    mem: Option<DataFrame>,
}

impl Stacked {
    /// A stack for at most `rows` rows with the columns of `like`.
    pub(super) fn new(rows: usize, like: &DataFrame) -> Stacked {
        Stacked::in_dir(rows, like, &std::env::temp_dir())
    }

    /// `new` with the file's directory given.
    fn in_dir(rows: usize, like: &DataFrame, dir: &std::path::Path) -> Stacked {
        let names: Option<Vec<&'static str>> = like
            .columns()
            .iter()
            .map(|c| {
                let name = super::run::EVENT_COLUMNS.iter().find(|n| **n == c.name().as_str())?;
                (c.dtype() == &column_type(name)).then_some(*name)
            })
            .collect();
        let spill = names.filter(|_| rows > SPILL_ROWS).and_then(|n| Spill::new(&n, rows, dir).ok());
        Stacked { spill, mem: None }
    }

    /// Whether the rows go to the file (else they are stacked in memory).
    pub(super) fn spills(&self) -> bool {
        self.spill.is_some()
    }

    /// Append `df` (the columns of the frame given to `new`). Its strings are written with
    /// every buffer they point into: give frames whose strings are their own (`compact`).
    pub(super) fn push(&mut self, df: DataFrame) -> PolarsResult<()> {
        match (&mut self.spill, &mut self.mem) {
            (Some(s), _) => s.write(&df),
            (None, Some(m)) => m.vstack_mut_owned(df).map(|_| ()),
            (None, None) => {
                self.mem = Some(df);
                Ok(())
            }
        }
    }

    /// The frame of every row pushed (`None` if none was).
    pub(super) fn finish(self) -> PolarsResult<Option<DataFrame>> {
        match (self.spill, self.mem) {
            (Some(s), _) if s.done > 0 => s.finish().map(Some),
            (_, Some(mut m)) => {
                m.rechunk_mut();
                Ok(Some(m))
            }
            _ => Ok(None),
        }
    }
}

/// `d` with its strings copied out of the buffers they share: a filtered or gathered string
/// column still points into the buffers of every row it came from (a row group's messages),
/// and a held or spilled frame would keep them all.
pub(super) fn compact(d: DataFrame) -> PolarsResult<DataFrame> {
    let cols = d
        .columns()
        .iter()
        .map(|c| -> PolarsResult<Column> {
            Ok(match c.dtype() {
                DataType::String => {
                    let mut ca: StringChunked = c.str()?.iter().collect();
                    ca.rename(c.name().clone());
                    ca.into_column()
                }
                _ => c.clone(),
            })
        })
        .collect::<PolarsResult<Vec<_>>>()?;
    DataFrame::new(d.height(), cols)
}

/// `d` in (ts_ms, file, line) order, then by its column `place` if it has one (a merge's
/// `Events::places`), ties in their order (`Events::sort`), gathered `BATCH` rows at a time
/// into a `Stacked` frame: the sorted copy of a large frame is not held in memory beside it.
/// The places come out in the sorted order (empty without the column); a large frame's
/// sorted copy leaves the column out.
pub(super) fn sorted(d: &DataFrame, place: &str) -> PolarsResult<(DataFrame, Vec<u32>)> {
    sorted_in(d, place, &std::env::temp_dir())
}

/// `sorted` with the file's directory given.
fn sorted_in(d: &DataFrame, place: &str, dir: &std::path::Path) -> PolarsResult<(DataFrame, Vec<u32>)> {
    let has_place = d.column(place).is_ok();
    let mut by = vec!["ts_ms", "file", "line"];
    if has_place {
        by.push(place);
    }
    let places = |s: &DataFrame| -> PolarsResult<Vec<u32>> {
        if !has_place {
            return Ok(Vec::new());
        }
        Ok(s.column(place)?.u32()?.iter().map(|v| v.unwrap_or(0)).collect())
    };
    let opts = SortMultipleOptions::default().with_maintain_order(true);
    if d.height() <= SPILL_ROWS {
        let s = d.sort(by, opts)?;
        let r = places(&s)?;
        return Ok((s, r));
    }
    let order = d.select(by.iter().copied())?.with_row_index("row".into(), None)?.sort(by, opts)?;
    let r = places(&order)?;
    let order = order.column("row")?.idx()?.clone();
    let d = if has_place { d.drop(place)? } else { d.clone() };
    let mut out = Stacked::in_dir(d.height(), &d, dir);
    for at in (0..d.height()).step_by(BATCH) {
        out.push(compact(d.take(&order.slice(at as i64, BATCH))?)?)?;
    }
    Ok((out.finish()?.unwrap_or_else(|| d.clear()), r))
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
        // Unlinked at once: the handle writes it and maps it, and a run that is killed leaves
        // nothing behind.
        let _ = std::fs::remove_file(&path);
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

    /// The frame, its arrays read from the mapped file.
    fn finish(mut self) -> PolarsResult<DataFrame> {
        // `Batched` writes the rows it announced; `Stacked` at most as many.
        polars_ensure!(self.done <= self.rows, ComputeError: "held rows: {} written of {}", self.done, self.rows);
        // A file of fewer bytes than written would make the arrays below fail their checks.
        self.file.set_len(align(self.end)).map_err(io_err(&self.path))?;
        let display = self.path.display().to_string();
        let mapped = Haystack::map_file(&self.file, &display);
        let map = Arc::new(mapped.map_err(|e| polars_err!(ComputeError: "cannot read back {display}: {e}"))?);
        polars_ensure!(
            map.mapped().is_some_and(|m| m.len() as u64 >= self.end),
            ComputeError: "cannot read back {display}: shorter than written"
        );
        let n = self.done;
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
        // Unlinked from the start: a run killed half-way leaves nothing either.
        assert!(dropped.spill.as_ref().is_some_and(|s| s.done == 14 && !s.path.exists()));
        drop(dropped);
        // Nothing is left behind in the directory.
        let left = std::fs::read_dir(&tmp)
            .unwrap()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().starts_with(&format!("upcause-held-{}-", std::process::id())))
            .count();
        assert_eq!(left, 0);
    }

    /// Frames stacked into the file (fewer rows than announced), and sorted a batch at a time:
    /// the frames an in-memory stack and sort give; a frame whose columns are not of the wide
    /// table's types is stacked in memory.
    #[test]
    fn stacked_and_sorted_frames_equal_the_in_memory_ones() {
        use crate::aggregate::cells::{Cells, INT_COLS, STR_COLS};
        let names: Vec<&'static str> = vec!["ts_ms", "file", "line", "message"];
        let k = |list: &[&str], c: &str| list.iter().position(|x| *x == c).unwrap();
        let rows = SPILL_ROWS + 3_000;
        let mut b = Batched::with_sizes(&names, rows, rows, usize::MAX, &std::env::temp_dir());
        for i in 0..rows {
            let c = b.cells();
            c.row();
            // Out of order, with ties of (time, file, line) that the order of the rows breaks.
            c.i(k(INT_COLS, "ts_ms"), Some(((i * 7919) % 5000) as i64));
            // Rows 5,000 apart tie.
            let j = i % 5000;
            c.s(k(STR_COLS, "file"), Some(if j % 3 == 0 { "b.log" } else { "a.log" }));
            c.i(k(INT_COLS, "line"), Some((j % 17) as i64));
            c.s(k(STR_COLS, "message"), Some(format!("a message long enough to live out of line, row {i}")));
            b.row_done().unwrap();
        }
        let d = b.finish().unwrap();
        // A directory of its own: `spilled_frames_equal_the_in_memory_build` counts the files
        // left in the shared one.
        let dir = tempfile::tempdir().unwrap();
        let mut st = Stacked::in_dir(rows + 500, &d, dir.path());
        assert!(st.spill.is_some());
        for at in (0..rows).step_by(5_000) {
            st.push(compact(d.slice(at as i64, 5_000)).unwrap()).unwrap();
        }
        let stacked = st.finish().unwrap().unwrap();
        assert!(stacked.first_col_n_chunks() == 1 && stacked.equals_missing(&d));
        let opts = SortMultipleOptions::default().with_maintain_order(true);
        let want = d.sort(["ts_ms", "file", "line"], opts.clone()).unwrap();
        let (got, runs) = sorted_in(&d, "run", dir.path()).unwrap();
        assert!(got.equals_missing(&want) && runs.is_empty());
        assert!(sorted_in(&stacked, "run", dir.path()).unwrap().0.equals_missing(&want));
        // With places (as a merge's stacked rows have): they break ties after the line,
        // come out in the sorted order, and the column is not in the sorted frame.
        let place: Vec<u32> = (0..rows as u32).map(|i| (i * 31) % 3).collect();
        let mut with = d.clone();
        with.with_column(Column::new("run".into(), place)).unwrap();
        let want = with.sort(["ts_ms", "file", "line", "run"], opts).unwrap();
        let (got, runs) = sorted_in(&with, "run", dir.path()).unwrap();
        assert!(got.equals_missing(&want.drop("run").unwrap()));
        let want_runs: Vec<u32> = want.column("run").unwrap().u32().unwrap().into_no_null_iter().collect();
        assert_eq!(runs, want_runs);
        assert!(runs.windows(2).any(|w| w[0] > w[1]), "the places are not merely sorted");
        // A column of another type than the wide table's: in memory.
        let other = d.clone().lazy().with_column(col("line").cast(DataType::Int32)).collect().unwrap();
        let mut st = Stacked::in_dir(rows, &other, dir.path());
        assert!(st.spill.is_none());
        st.push(other.slice(0, 10)).unwrap();
        st.push(other.slice(10, 20)).unwrap();
        assert!(st.finish().unwrap().unwrap().equals_missing(&other.slice(0, 30)));
        assert!(Stacked::in_dir(rows, &d, dir.path()).finish().unwrap().is_none());
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0, "no file left behind");
    }
}
