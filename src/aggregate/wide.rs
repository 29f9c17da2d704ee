//! The rows of `events.parquet`, a row group at a time (`Groups`): the three kinds' held
//! frames and the quiet rows read back, merged in (time, file, line, record) order and built
//! in that order straight into one builder per column (`GroupCols`).
//!
//! Input: `Events`. Output: frames with every column of `wide_columns`, at most `size` rows
//! each. Invariants: the groups, one after the other, are the one sorted wide table (each
//! kind's order is kept; equal (time, file, line) go "error" < "fpm" < "request", the order of
//! the record names); a kind's cells are the ones its frame holds or its row function
//! (`events::push_error`, `push_fpm`) writes, every other cell null; only one group's rows
//! are built at a time. Building the group in its final order spares what stacking per-kind
//! frames and gathering them into order cost: the quiet rows' frames and a gather of every
//! column (together half of the file's work).

use super::cells::{Cells, BOOL_COLS, F64_COLS, INT_COLS, STR_COLS};
use super::events::{column_type, push_error, push_fpm, Events, RowCtx};
use super::quiet::{Keys, Quiet};
use super::run::EVENT_COLUMNS;
use crate::model::event::FpmEvent;
use crate::model::time::StampText;
use crate::model::{Ts, Zone};
use crate::scan::quiet::Merged;
use polars::prelude::*;
use polars_arrow::array::{
    BooleanArray, MutableBinaryViewArray, MutableBooleanArray, MutablePrimitiveArray, PrimitiveArray, Utf8ViewArray,
};
use std::borrow::Cow;
use std::iter::Peekable;

/// The columns of `events.parquet`, in order: `EVENT_COLUMNS`, then a request's incident
/// columns.
pub fn wide_columns() -> Vec<&'static str> {
    let mut names = EVENT_COLUMNS.to_vec();
    names.extend(["incident", "contributing"]);
    names
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
        let t = column_type(&name);
        if c.dtype() == &t {
            Ok(c)
        } else {
            c.cast(&t)
        }
    }
}

/// A held frame's column as a row group reads it (its one chunk, in the wide table's
/// physical type), or `Null`: the kind has no such column.
enum Src {
    Null,
    Str(Utf8ViewArray),
    Int(PrimitiveArray<i64>),
    Float(PrimitiveArray<f64>),
    Bool(BooleanArray),
}

impl Src {
    /// The columns `names` of frame `d`.
    fn of(d: &DataFrame, names: &[&'static str]) -> PolarsResult<Vec<Src>> {
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

/// A row group being built: one builder per column of the wide table, in its order. A null
/// is written when the column's next value comes (or at the end), as a run: most cells of a
/// row are null (a quiet error-log row fills 25 of 60 columns), and a null at a time cost as
/// much as the values.
pub(super) struct GroupCols {
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

impl GroupCols {
    fn new(names: &[&'static str], cap: usize) -> GroupCols {
        // Every column of the type lists is a column of the wide table (checked by a test).
        let place = |c: &&str| names.iter().position(|n| n == c).unwrap_or(usize::MAX);
        let at = [STR_COLS, INT_COLS, F64_COLS, BOOL_COLS].map(|l| l.iter().map(place).collect());
        GroupCols {
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
    /// this row's.
    fn at_row(&mut self, j: usize) -> Option<&mut Out> {
        let o = self.out.get_mut(j)?;
        let gap = self.n - 1 - self.len[j];
        if gap > 0 {
            o.nulls(gap as usize);
        }
        self.len[j] = self.n;
        Some(o)
    }

    /// Row `i` of a held frame (its columns `src`, in output order).
    fn held(&mut self, src: &[Src], i: usize) {
        self.n += 1;
        for (j, s) in src.iter().enumerate() {
            if matches!(s, Src::Null) {
                continue;
            }
            match (s, self.at_row(j)) {
                (Src::Str(c), Some(Out::Str(b))) => b.push(c.get(i)),
                (Src::Int(c), Some(Out::Int(b))) => b.push(c.get(i)),
                (Src::Float(c), Some(Out::Float(b))) => b.push(c.get(i)),
                (Src::Bool(c), Some(Out::Bool(b))) => b.push(c.get(i)),
                (_, Some(o)) => o.nulls(1),
                (_, None) => {}
            }
        }
    }

    fn finish(self) -> PolarsResult<DataFrame> {
        let cols = (self.out.into_iter().zip(&self.names).zip(&self.len))
            .map(|((mut o, n), len)| {
                o.nulls((self.n - len) as usize);
                o.finish(n)
            })
            .collect::<PolarsResult<Vec<_>>>()?;
        DataFrame::new(self.n as usize, cols)
    }
}

impl<'a> Cells<'a> for GroupCols {
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

/// A held kind: its frame's sort keys and columns.
struct Held {
    keys: Keys,
    src: Vec<Src>,
    len: usize,
}

type FpmRows<'e> = Peekable<Box<dyn Iterator<Item = FpmEvent> + Send + 'e>>;

/// The row groups of `events.parquet` (see the module doc).
pub struct Groups<'e> {
    names: Vec<&'static str>,
    size: usize,
    /// Errors, FPM events, requests: in the order of their record names.
    held: [Held; 3],
    next: [usize; 3],
    quiet: Option<(&'e Quiet, RowCtx<'e>, Peekable<Merged<'e>>, FpmRows<'e>)>,
    first: bool,
    done: bool,
}

/// Where the next row comes from.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Next {
    Held(usize),
    QuietError,
    QuietFpm,
}

impl<'e> Groups<'e> {
    pub fn new(ev: &'e Events, size: usize) -> PolarsResult<Groups<'e>> {
        let names = wide_columns();
        let held = |d: &DataFrame| -> PolarsResult<Held> {
            Ok(Held { keys: Keys::of(d)?, src: Src::of(d, &names)?, len: d.height() })
        };
        let held = [held(&ev.err)?, held(&ev.fpm)?, held(&ev.req)?];
        let quiet = ev.quiet.as_deref().map(|q| {
            let fpm: Box<dyn Iterator<Item = FpmEvent> + Send + 'e> = Box::new(q.rows.fpm_merged(q.rank()));
            (q, q.ctx(), q.rows.merged(q.rank()).peekable(), fpm.peekable())
        });
        Ok(Groups { names, size: size.max(1), held, next: [0; 3], quiet, first: true, done: false })
    }

    /// The next row group, `None` after the last. The first is returned even when empty (the
    /// file then has the schema and no rows).
    pub fn next_group(&mut self) -> PolarsResult<Option<DataFrame>> {
        if self.done {
            return Ok(None);
        }
        let mut g = GroupCols::new(&self.names, self.size);
        let mut rows = 0;
        // The record name's rank breaks ties of (time, file, line): quiet rows are errors and
        // FPM events.
        const RANK: [u8; 3] = [0, 1, 2];
        while rows < self.size {
            let (held, next) = (&self.held, &self.next);
            let mut best = (0..3)
                .filter(|&k| next[k] < held[k].len)
                .map(|k| {
                    let (ts, file, line) = held[k].keys.get(next[k]);
                    ((ts, file, line, RANK[k]), Next::Held(k))
                })
                .min();
            if let Some((q, _, errs, fpm)) = &mut self.quiet {
                let e = errs.peek().map(|e| ((e.ts, q.file(e.source), e.line as i64, RANK[0]), Next::QuietError));
                let f = fpm.peek().map(|e| ((e.ts, q.file(e.source), e.line as i64, RANK[1]), Next::QuietFpm));
                best = best.into_iter().chain(e).chain(f).min();
            }
            let Some((_, from)) = best else { break };
            match (from, &mut self.quiet) {
                (Next::Held(k), _) => {
                    g.held(&self.held[k].src, self.next[k]);
                    self.next[k] += 1;
                }
                (Next::QuietError, Some((_, x, errs, _))) => {
                    if let Some(e) = errs.next() {
                        push_error(&mut g, x, e, None);
                    }
                }
                (Next::QuietFpm, Some((_, x, _, fpm))) => {
                    if let Some(e) = fpm.next() {
                        push_fpm(&mut g, x, &e);
                    }
                }
                (_, None) => break,
            }
            rows += 1;
        }
        if rows == 0 && !self.first {
            self.done = true;
            return Ok(None);
        }
        self.first = false;
        self.done = rows < self.size;
        g.finish().map(Some)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every column a row function can write has a place in the wide table.
    #[test]
    fn every_typed_column_is_a_wide_column() {
        let names = wide_columns();
        let g = GroupCols::new(&names, 1);
        for (t, list) in [STR_COLS, INT_COLS, F64_COLS, BOOL_COLS].iter().enumerate() {
            for (k, c) in list.iter().enumerate() {
                assert!(g.at[t][k] < names.len(), "{c}");
                assert_eq!(names[g.at[t][k]], *c);
            }
        }
        assert!(g.ts < names.len() && g.ts_ms < INT_COLS.len());
    }

    /// Events of three kinds, each in its own order, with ties of (time, file, line) across
    /// kinds: the groups, stacked, are the wide table in (time, file, line, record) order,
    /// whatever the group size; a kind's cells are its own, the other columns null.
    #[test]
    fn groups_merge_the_kinds_in_the_documented_order() {
        let wide = df!(
            "record" => ["request", "error", "fpm", "error", "request", "fpm", "error"],
            "ts_ms" => [5i64, 5, 5, 1, 9, 2, 9],
            "file" => ["a.log", "b.log", "a.log", "b.log", "a.log", "c.log", "a.log"],
            "line" => [3i64, 1, 3, 7, 1, 2, 4],
            "status" => [Some(502i64), None, None, None, Some(504), None, None],
            "message" => [None, Some("m1"), Some("f1"), Some("m0"), None, Some("f0"), Some("m2")],
            "pool" => [None, None, Some("www"), None, None, Some("www"), None],
        )
        .unwrap();
        let ev = Events::from_wide(&wide).unwrap().sort().unwrap();
        let expected = [
            ("error", 1i64, "b.log", 7i64),
            ("fpm", 2, "c.log", 2),
            ("error", 5, "a.log", 3),
            ("fpm", 5, "a.log", 3),
            ("request", 5, "a.log", 3),
            ("error", 5, "b.log", 1),
            ("request", 9, "a.log", 1),
            ("error", 9, "a.log", 4),
        ];
        // The error row at (5, a.log, 3) is not in the input: add it.
        let extra = df!(
            "record" => ["error"], "ts_ms" => [5i64], "file" => ["a.log"], "line" => [3i64],
            "status" => [None::<i64>], "message" => [Some("m3")], "pool" => [None::<&str>],
        )
        .unwrap();
        let ev = {
            let mut e = ev;
            e.vstack(&Events::from_wide(&extra).unwrap()).unwrap();
            e.sort().unwrap()
        };
        for size in [1, 2, 3, 100] {
            let mut g = Groups::new(&ev, size).unwrap();
            let mut all: Option<DataFrame> = None;
            let mut groups = 0;
            while let Some(d) = g.next_group().unwrap() {
                assert!(d.height() <= size && d.width() == wide_columns().len());
                groups += 1;
                match &mut all {
                    Some(a) => a.vstack_mut(&d).map(|_| ()).unwrap(),
                    None => all = Some(d),
                }
            }
            let all = all.unwrap();
            assert_eq!(groups, expected.len().div_ceil(size), "size {size}");
            let rec: Vec<_> = all.column("record").unwrap().str().unwrap().iter().map(|v| v.unwrap_or("")).collect();
            let ts: Vec<_> = all.column("ts_ms").unwrap().i64().unwrap().into_no_null_iter().collect();
            let file: Vec<_> = all.column("file").unwrap().str().unwrap().iter().map(|v| v.unwrap_or("")).collect();
            let line: Vec<_> = all.column("line").unwrap().i64().unwrap().into_no_null_iter().collect();
            let got: Vec<_> = (0..all.height()).map(|i| (rec[i], ts[i], file[i], line[i])).collect();
            assert_eq!(got, expected, "size {size}");
            // Requests hold a status, the others null; FPM rows a pool; the stamp column
            // follows ts_ms.
            let status: Vec<Option<i64>> = all.column("status").unwrap().i64().unwrap().iter().collect();
            let pool: Vec<Option<&str>> = all.column("pool").unwrap().str().unwrap().iter().collect();
            for (i, (r, ..)) in expected.iter().enumerate() {
                assert_eq!(status[i].is_some(), *r == "request", "row {i}");
                assert_eq!(pool[i].is_some(), *r == "fpm", "row {i}");
            }
            assert_eq!(all.column("ts").unwrap().dtype(), &column_type("ts"));
            assert_eq!(all.column("ts").unwrap().null_count(), all.height());
        }
    }

    /// No events: one empty group with every column (the file keeps its schema).
    #[test]
    fn no_events_make_one_empty_group() {
        let ev = Events::from_wide(&df!("record" => Vec::<&str>::new(), "ts_ms" => Vec::<i64>::new(), "file" => Vec::<&str>::new(), "line" => Vec::<i64>::new()).unwrap()).unwrap();
        let mut g = Groups::new(&ev, 4).unwrap();
        let d = g.next_group().unwrap().unwrap();
        assert_eq!((d.height(), d.width()), (0, wide_columns().len()));
        assert!(g.next_group().unwrap().is_none());
    }
}
