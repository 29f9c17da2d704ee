//! Writing a run directory: CSV tables, `summary.json`, and the terminal summary.
//!
//! Input: an `Analysis` and `RenderOptions`. Output: files in the run's directory, each
//! with a documented schema (README "Outputs"). Invariants: files are written to a
//! temporary name and renamed, so a reader never sees half a report; the bytes written
//! depend only on the analysis (the one exception is `generated_at` in summary.json).

pub mod csv;
pub mod json;
pub mod terminal;

use crate::Analysis;
use std::path::{Path, PathBuf};

/// Version of the run-directory layout (`summary.json` `schema_version`); bumped when a
/// column or file changes meaning, checked by `compare`, `history` and `merge`.
pub const SCHEMA_VERSION: u32 = 1;

#[derive(Clone, Debug)]
pub struct RenderOptions {
    pub out_dir: PathBuf,
    pub name: String,
    pub host: String,
    pub bucket_s: Option<i64>,
    pub top: usize,
    pub uri_rules: Vec<(regex::Regex, String)>,
}

#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    #[error("cannot write {path}: {source}")]
    Io { path: String, source: std::io::Error },
    #[error("building {table}: {source}")]
    Table { table: String, source: polars::error::PolarsError },
}

pub fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> RenderError + '_ {
    move |e| RenderError::Io { path: path.display().to_string(), source: e }
}

pub fn table_err(table: &str) -> impl FnOnce(polars::error::PolarsError) -> RenderError + '_ {
    move |e| RenderError::Table { table: table.to_string(), source: e }
}

/// Write `bytes` to `path` atomically (temp file + rename).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), RenderError> {
    let tmp = path.with_extension("tmp~");
    std::fs::write(&tmp, bytes).map_err(io_err(&tmp))?;
    std::fs::rename(&tmp, path).map_err(io_err(path))
}

/// A table builder.
type TableFn = fn(&Analysis) -> polars::prelude::PolarsResult<polars::prelude::DataFrame>;

/// Write every report of a run.
pub fn write_run(a: &Analysis, o: &RenderOptions) -> Result<(), RenderError> {
    std::fs::create_dir_all(&o.out_dir).map_err(io_err(&o.out_dir))?;
    use crate::aggregate as agg;
    let tables: [(&str, TableFn); 5] = [
        ("errors.csv", agg::errors),
        ("fpm.csv", agg::fpm),
        ("requests.csv", agg::requests),
        ("causes.csv", agg::causes),
        ("incidents.csv", agg::incidents),
    ];
    for (name, build) in tables {
        let mut df = build(a).map_err(table_err(name))?;
        csv::write(&mut df, &o.out_dir.join(name))?;
    }
    json::write_summary(a, o)?;
    Ok(())
}
