//! The cells of event rows on their way into a frame: the wide table's columns by type
//! (`STR_COLS`, ...), the `s!`, `i!`, `f!`, `b!` macros that name a cell's column at compile
//! time, the `Cells` sink the row functions of `events` write through, and `Builder`, the
//! sink that builds the rows straight into Arrow arrays (a kind's frame, a batch of quiet
//! rows, a row group of `events.parquet`), with `Src` to copy rows of a frame into it.
//!
//! Input: cells, row by row, or rows of a frame. Output: a `DataFrame` of one chunk per
//! column. Invariants: a row's cells come after its `row()`; a cell a row does not set is
//! null; a column's position in its type's list is checked at compile time (a misspelt
//! column does not compile); a column's type is `column_type`'s.

use crate::model::time::StampText;
use crate::model::{Ts, Zone};
use polars::prelude::*;
use polars_arrow::array::{
    BooleanArray, MutableBinaryViewArray, MutableBooleanArray, MutablePrimitiveArray, PrimitiveArray, Utf8ViewArray,
};
use std::borrow::Cow;

/// Where the row functions of `events` put a row's cells: `k` is the column's position in its
/// type's list (`STR_COLS`, `INT_COLS`, `F64_COLS`, `BOOL_COLS`).
pub(super) trait Cells<'a> {
    /// Start a row (its cells follow).
    fn row(&mut self);
    fn s<V: Into<Cow<'a, str>>>(&mut self, k: usize, v: Option<V>);
    fn i(&mut self, k: usize, v: Option<i64>);
    fn f(&mut self, k: usize, v: Option<f64>);
    fn b(&mut self, k: usize, v: bool);
    /// The text of stamp `ts` in `zone` into string column `k` (rows come in time order: the
    /// sink keeps the last second's text).
    fn time(&mut self, k: usize, ts: Ts, zone: &Zone);
}

/// Position of `name` in `list`, at compile time (a misspelt column does not compile).
pub(super) const fn pos(list: &[&str], name: &str) -> usize {
    let mut k = 0;
    while k < list.len() {
        let (a, b) = (list[k].as_bytes(), name.as_bytes());
        if a.len() == b.len() {
            let mut j = 0;
            while j < a.len() && a[j] == b[j] {
                j += 1;
            }
            if j == a.len() {
                return k;
            }
        }
        k += 1;
    }
    panic!("no such event column")
}

macro_rules! s {
    ($c:expr, $n:literal, $v:expr) => {
        $crate::aggregate::cells::Cells::s(
            $c,
            const { $crate::aggregate::cells::pos($crate::aggregate::cells::STR_COLS, $n) },
            $v,
        )
    };
}
macro_rules! i {
    ($c:expr, $n:literal, $v:expr) => {
        $crate::aggregate::cells::Cells::i(
            $c,
            const { $crate::aggregate::cells::pos($crate::aggregate::cells::INT_COLS, $n) },
            $v,
        )
    };
}
macro_rules! f {
    ($c:expr, $n:literal, $v:expr) => {
        $crate::aggregate::cells::Cells::f(
            $c,
            const { $crate::aggregate::cells::pos($crate::aggregate::cells::F64_COLS, $n) },
            $v,
        )
    };
}
macro_rules! b {
    ($c:expr, $n:literal, $v:expr) => {
        $crate::aggregate::cells::Cells::b(
            $c,
            const { $crate::aggregate::cells::pos($crate::aggregate::cells::BOOL_COLS, $n) },
            $v,
        )
    };
}
pub(super) use {b, f, i, s};

pub(super) const STR_COLS: &[&str] = &[
    "record",
    "machine",
    "time",
    "file",
    "cause_class",
    "cause",
    "confidence",
    "evidence",
    "first_evidence",
    "detail",
    "method",
    "uri",
    "client",
    "vhost",
    "upstream_addr",
    "upstream_status",
    "outcome",
    "proximate",
    "user_agent",
    "level",
    "signature",
    "phase",
    "line_class",
    "server",
    "request",
    "upstream",
    "referrer",
    "message",
    "pool",
    "event",
    "script",
    "envelope",
    "container",
    "stream",
    "log_host",
];
pub(super) const INT_COLS: &[&str] = &[
    "ts_ms",
    "line",
    "first_evidence_ms",
    "status",
    "pid",
    "conn",
    "errno",
    "entry_lines",
    "child_pid",
    "signal",
    "exit_code",
];
pub(super) const F64_COLS: &[&str] =
    &["request_time", "upstream_response_time", "upstream_connect_time", "upstream_header_time", "elapsed_s"];
pub(super) const BOOL_COLS: &[&str] = &["failure", "time_exact"];

/// The type of a column of the wide table.
pub fn column_type(c: &str) -> DataType {
    if c == "ts" {
        DataType::Datetime(TimeUnit::Milliseconds, None)
    } else if INT_COLS.contains(&c) {
        DataType::Int64
    } else if F64_COLS.contains(&c) {
        DataType::Float64
    } else if BOOL_COLS.contains(&c) {
        DataType::Boolean
    } else {
        DataType::String
    }
}

/// A column's builder. `ts` is built as integers (from `ts_ms`) and cast at the end.
enum Out {
    Str(MutableBinaryViewArray<str>),
    Int(MutablePrimitiveArray<i64>),
    Float(MutablePrimitiveArray<f64>),
    Bool(MutableBooleanArray),
}

impl Out {
    fn new(name: &str, cap: usize) -> Out {
        match column_type(name) {
            DataType::String => Out::Str(MutableBinaryViewArray::with_capacity(cap)),
            DataType::Float64 => Out::Float(MutablePrimitiveArray::with_capacity(cap)),
            DataType::Boolean => Out::Bool(MutableBooleanArray::with_capacity(cap)),
            _ => Out::Int(MutablePrimitiveArray::with_capacity(cap)),
        }
    }

    fn nulls(&mut self, n: usize) {
        match self {
            Out::Str(a) => a.extend_null(n),
            Out::Int(a) => a.extend_null(n),
            Out::Float(a) => a.extend_null(n),
            Out::Bool(a) => a.extend_constant(n, None),
        }
    }

    fn finish(self, name: &str) -> PolarsResult<Column> {
        let name = PlSmallStr::from(name);
        let c = match self {
            Out::Str(a) => StringChunked::with_chunk(name.clone(), a.freeze()).into_column(),
            Out::Int(a) => Int64Chunked::with_chunk(name.clone(), PrimitiveArray::from(a)).into_column(),
            Out::Float(a) => Float64Chunked::with_chunk(name.clone(), PrimitiveArray::from(a)).into_column(),
            Out::Bool(a) => BooleanChunked::with_chunk(name.clone(), BooleanArray::from(a)).into_column(),
        };
        in_column_type(c)
    }
}

/// `c` in its wide-table type (`column_type` of its name): the builders make the physical
/// arrays (`ts` as integers), this casts where the logical type differs.
pub(super) fn in_column_type(c: Column) -> PolarsResult<Column> {
    let t = column_type(c.name());
    if c.dtype() == &t {
        Ok(c)
    } else {
        c.cast(&t)
    }
}

/// A held frame's column as a row group reads it (its one chunk, in the wide table's
/// physical type), or `Null`: the kind has no such column.
pub(super) enum Src {
    Null,
    Str(Utf8ViewArray),
    Int(PrimitiveArray<i64>),
    Float(PrimitiveArray<f64>),
    Bool(BooleanArray),
}

impl Src {
    /// The columns `names` of frame `d`.
    pub(super) fn of(d: &DataFrame, names: &[&'static str]) -> PolarsResult<Vec<Src>> {
        fn one<T: PolarsDataType>(c: &ChunkedArray<T>) -> Option<T::Array> {
            c.rechunk().downcast_iter().next().cloned()
        }
        names
            .iter()
            .map(|name| {
                let Ok(c) = d.column(name) else { return Ok(Src::Null) };
                let src = match column_type(name) {
                    DataType::String => one(c.str()?).map(Src::Str),
                    DataType::Float64 => one(c.cast(&DataType::Float64)?.f64()?).map(Src::Float),
                    DataType::Boolean => one(c.bool()?).map(Src::Bool),
                    _ => one(c.cast(&DataType::Int64)?.i64()?).map(Src::Int),
                };
                Ok(src.unwrap_or(Src::Null))
            })
            .collect()
    }
}

/// Rows being built into a frame: one Arrow builder per column, in the order given. A null
/// is written when the column's next value comes (or at the end), as a run: most cells of a
/// row are null (a quiet error-log row fills about 20 of the 56 columns), and a null at a
/// time cost as much as the values.
pub(super) struct Builder {
    names: Vec<&'static str>,
    out: Vec<Out>,
    /// The output column of each column of `STR_COLS`, `INT_COLS`, `F64_COLS`, `BOOL_COLS`.
    at: [Vec<usize>; 4],
    /// The output column `ts` (written with `ts_ms`), and `ts_ms`'s place in `INT_COLS`.
    ts: usize,
    ts_ms: usize,
    /// Per output column, the rows it holds (nulls still to come are not written yet).
    len: Vec<u32>,
    /// Rows begun.
    n: u32,
    stamp: StampText,
    text: String,
}

impl Builder {
    pub(super) fn new(names: &[&'static str], cap: usize) -> Builder {
        // A column of the type lists that is not one of `names` (another kind's) is not
        // built: its cells are dropped.
        let place = |c: &&str| names.iter().position(|n| n == c).unwrap_or(usize::MAX);
        let at = [STR_COLS, INT_COLS, F64_COLS, BOOL_COLS].map(|l| l.iter().map(place).collect());
        Builder {
            names: names.to_vec(),
            out: names.iter().map(|n| Out::new(n, cap)).collect(),
            at,
            ts: place(&"ts"),
            ts_ms: INT_COLS.iter().position(|c| *c == "ts_ms").unwrap_or(usize::MAX),
            len: vec![0; names.len()],
            n: 0,
            stamp: StampText::default(),
            text: String::new(),
        }
    }

    /// Output column `j`'s builder, with the nulls before this row written: its next value is
    /// this row's. Inlined (a hint): a build that called it instead added about 0.25 G
    /// instructions to the 2 GiB run's `events.parquet` (callgrind).
    #[inline]
    fn at_row(&mut self, j: usize) -> Option<&mut Out> {
        let o = self.out.get_mut(j)?;
        // A cell written twice in a row would make its column one too long, which `finish`
        // reports as an error (the row functions write each cell once).
        debug_assert!(self.len[j] < self.n, "a cell written twice, or before its row");
        let gap = self.n.saturating_sub(1).saturating_sub(self.len[j]);
        if gap > 0 {
            o.nulls(gap as usize);
        }
        self.len[j] = self.n;
        Some(o)
    }

    /// Row `i` of a held frame (its columns `src`, in output order). A null cell is not
    /// written: it joins its column's run of nulls, written with the next value (a null at a
    /// time was a third of the copy's instructions). One arm per type, each reading its cell
    /// once (`get`), and its builder only for a value.
    pub(super) fn held(&mut self, src: &[Src], i: usize) {
        self.n += 1;
        for (j, s) in src.iter().enumerate() {
            match s {
                Src::Null => {}
                Src::Str(c) => {
                    if let Some(v) = c.get(i) {
                        if let Some(Out::Str(b)) = self.at_row(j) {
                            b.push_value(v);
                        }
                    }
                }
                Src::Int(c) => {
                    if let Some(v) = c.get(i) {
                        if let Some(Out::Int(b)) = self.at_row(j) {
                            b.push_value(v);
                        }
                    }
                }
                Src::Float(c) => {
                    if let Some(v) = c.get(i) {
                        if let Some(Out::Float(b)) = self.at_row(j) {
                            b.push_value(v);
                        }
                    }
                }
                Src::Bool(c) => {
                    if let Some(v) = c.get(i) {
                        if let Some(Out::Bool(b)) = self.at_row(j) {
                            b.push_value(v);
                        }
                    }
                }
            }
        }
    }

    /// The frame of the rows built, with the columns given to `new` (of the wide table's
    /// types).
    pub(super) fn finish(self) -> PolarsResult<DataFrame> {
        let cols = (self.out.into_iter().zip(&self.names).zip(&self.len))
            .map(|((mut o, n), len)| {
                o.nulls(self.n.saturating_sub(*len) as usize);
                o.finish(n)
            })
            .collect::<PolarsResult<Vec<_>>>()?;
        DataFrame::new(self.n as usize, cols)
    }
}

impl<'a> Cells<'a> for Builder {
    fn row(&mut self) {
        self.n += 1;
    }
    fn s<V: Into<Cow<'a, str>>>(&mut self, k: usize, v: Option<V>) {
        if let Some(v) = v {
            if let Some(Out::Str(b)) = self.at_row(self.at[0][k]) {
                b.push_value(v.into().as_ref());
            }
        }
    }
    fn i(&mut self, k: usize, v: Option<i64>) {
        let Some(v) = v else { return };
        if let Some(Out::Int(b)) = self.at_row(self.at[1][k]) {
            b.push_value(v);
        }
        if k == self.ts_ms {
            if let Some(Out::Int(b)) = self.at_row(self.ts) {
                b.push_value(v);
            }
        }
    }
    fn f(&mut self, k: usize, v: Option<f64>) {
        let Some(v) = v else { return };
        if let Some(Out::Float(b)) = self.at_row(self.at[2][k]) {
            b.push_value(v);
        }
    }
    fn b(&mut self, k: usize, v: bool) {
        if let Some(Out::Bool(b)) = self.at_row(self.at[3][k]) {
            b.push_value(v);
        }
    }
    fn time(&mut self, k: usize, ts: Ts, zone: &Zone) {
        let mut text = std::mem::take(&mut self.text);
        text.clear();
        self.stamp.push(ts, zone, &mut text);
        if let Some(Out::Str(b)) = self.at_row(self.at[0][k]) {
            b.push_value(text.as_str());
        }
        self.text = text;
    }
}
