//! The cells of event rows on their way into a table: the wide table's columns by type
//! (`STR_COLS`, ...), the `s!`, `i!`, `f!`, `b!` macros that name a cell's column at compile
//! time, the `Cells` sink the row functions of `events` write through, and `EventCols`, the
//! sink that stages a batch of rows into a per-kind frame.
//!
//! Input: cells, row by row. Output: a `DataFrame` (`EventCols::frame`), or whatever another
//! sink builds (`wide::GroupCols`: a row group of `events.parquet`). Invariants: a row's
//! cells come after its `row()`; a cell a row does not set is null; a column's position in
//! its type's list is checked at compile time (a misspelt column does not compile).

use crate::model::time::StampText;
use crate::model::{Ts, Zone};
use polars::prelude::*;
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

/// Column-wise accumulation of event rows of all three kinds: one staging vector per column
/// of the wide table, indexed by the column's position in its type's list (resolved at compile
/// time by the `s!`, `i!`, `f!`, `b!` macros, so a cell costs no lookup), and string cells
/// borrowed from the scan's rows where they can be (an owned `String` per cell was one
/// allocation per cell, about 25 per row).
pub(super) struct EventCols<'a> {
    s: Vec<Vec<Option<Cow<'a, str>>>>,
    i: Vec<Vec<Option<i64>>>,
    f: Vec<Vec<Option<f64>>>,
    b: Vec<Vec<Option<bool>>>,
    n: usize,
    /// The `time` text of the rows, which come in time order.
    stamp: StampText,
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

impl<'a> EventCols<'a> {
    pub(super) fn new() -> Self {
        EventCols {
            s: vec![Vec::new(); STR_COLS.len()],
            i: vec![Vec::new(); INT_COLS.len()],
            f: vec![Vec::new(); F64_COLS.len()],
            b: vec![Vec::new(); BOOL_COLS.len()],
            n: 0,
            stamp: StampText::default(),
        }
    }
    /// The frame of columns `names` (in that order).
    pub(super) fn frame(mut self, names: &[&'static str]) -> PolarsResult<DataFrame> {
        let mut cols = Vec::new();
        let at = |list: &[&str], name: &str| list.iter().position(|c| *c == name);
        for name in names {
            let c = if *name == "ts" {
                let ts = at(INT_COLS, "ts_ms").map(|k| self.i[k].clone()).unwrap_or_default();
                Column::new("ts".into(), ts).cast(&DataType::Datetime(TimeUnit::Milliseconds, None))?
            } else if let Some(k) = at(STR_COLS, name) {
                let cells = std::mem::take(&mut self.s[k]);
                let mut sb = StringChunkedBuilder::new((*name).into(), cells.len());
                for v in &cells {
                    sb.append_option(v.as_deref());
                }
                sb.finish().into_column()
            } else if let Some(k) = at(INT_COLS, name) {
                Column::new((*name).into(), std::mem::take(&mut self.i[k]))
            } else if let Some(k) = at(F64_COLS, name) {
                Column::new((*name).into(), std::mem::take(&mut self.f[k]))
            } else {
                let k = at(BOOL_COLS, name).expect("a column of the wide table");
                Column::new((*name).into(), std::mem::take(&mut self.b[k]))
            };
            cols.push(c);
        }
        DataFrame::new(self.n, cols)
    }
}

impl<'a> Cells<'a> for EventCols<'a> {
    fn row(&mut self) {
        self.n += 1;
        self.s.iter_mut().for_each(|c| c.push(None));
        self.i.iter_mut().for_each(|c| c.push(None));
        self.f.iter_mut().for_each(|c| c.push(None));
        self.b.iter_mut().for_each(|c| c.push(None));
    }
    fn s<V: Into<Cow<'a, str>>>(&mut self, k: usize, v: Option<V>) {
        *self.s[k].last_mut().expect("a row") = v.map(Into::into);
    }
    fn i(&mut self, k: usize, v: Option<i64>) {
        *self.i[k].last_mut().expect("a row") = v;
    }
    fn f(&mut self, k: usize, v: Option<f64>) {
        *self.f[k].last_mut().expect("a row") = v;
    }
    fn b(&mut self, k: usize, v: bool) {
        *self.b[k].last_mut().expect("a row") = Some(v);
    }
    fn time(&mut self, k: usize, ts: Ts, zone: &Zone) {
        let t = self.stamp.format(ts, zone);
        self.s(k, Some(t));
    }
}
