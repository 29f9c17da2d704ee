//! Aggregation with polars: a run as data (`run`: events table + counters, stored and
//! reloaded), and the report computed from it (`report`: incidents and event tables;
//! `freq`: timelines, frequencies, latency).
//!
//! Input: an `Analysis` or a stored run directory. Output: polars `DataFrame`s whose column
//! names and order are the documented CSV and Parquet schemas. Invariants: every frame is
//! sorted by its documented keys before it leaves this module; times are RFC 3339 strings
//! in the run's zone next to a millisecond column; polars stays inside this module (and the
//! thin writers in `render`).

mod cells;
pub mod compare;
pub mod events;
pub mod freq;
pub mod quiet;
pub mod report;
pub mod restore;
pub mod run;
mod spill;
pub mod store;
mod tally;
pub mod wide;

use crate::analysis::Analysis;
use crate::model::time::format_rfc3339;
use crate::model::Ts;
use polars::prelude::*;

/// Column-by-column frame builder.
#[derive(Default)]
pub struct Cols {
    cols: Vec<Column>,
}

impl Cols {
    pub fn str(&mut self, name: &str, v: Vec<Option<String>>) -> &mut Self {
        self.cols.push(Column::new(name.into(), v));
        self
    }
    pub fn strs(&mut self, name: &str, v: Vec<String>) -> &mut Self {
        self.cols.push(Column::new(name.into(), v));
        self
    }
    pub fn i64(&mut self, name: &str, v: Vec<Option<i64>>) -> &mut Self {
        self.cols.push(Column::new(name.into(), v));
        self
    }
    /// A column without nulls. Vectors without nulls become the column's buffer (`from_vec`):
    /// `Column::new` copied them (a fifth of the instructions building the counter files).
    pub fn i64s(&mut self, name: &str, v: Vec<i64>) -> &mut Self {
        self.cols.push(Int64Chunked::from_vec(name.into(), v).into_column());
        self
    }
    pub fn u32(&mut self, name: &str, v: Vec<u32>) -> &mut Self {
        self.cols.push(UInt32Chunked::from_vec(name.into(), v).into_column());
        self
    }
    pub fn u64(&mut self, name: &str, v: Vec<u64>) -> &mut Self {
        self.cols.push(UInt64Chunked::from_vec(name.into(), v).into_column());
        self
    }
    pub fn f64(&mut self, name: &str, v: Vec<Option<f64>>) -> &mut Self {
        self.cols.push(Column::new(name.into(), v));
        self
    }
    pub fn frame(&mut self) -> PolarsResult<DataFrame> {
        DataFrame::new_infer_height(std::mem::take(&mut self.cols))
    }
}

/// Render helpers shared by the table builders.
pub struct Fmt<'a> {
    pub a: &'a Analysis,
}

impl Fmt<'_> {
    pub fn time(&self, ts: Ts) -> String {
        format_rfc3339(ts, &self.a.zone.zone)
    }
    pub fn file(&self, src: u32) -> String {
        self.a.sources.get(src as usize).map(|s| s.display.clone()).unwrap_or_default()
    }
}
