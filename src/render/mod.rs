//! Writing a run directory: CSV tables, `events.parquet` and the counters, `summary.json`,
//! `report.html`, and the terminal summary.
//!
//! Input: a `Run` and its `Report`. Output: files in the run's directory, each with a
//! documented schema (README "Outputs"). Invariants: files are written to a temporary name
//! and renamed, so a reader never sees half a report; the bytes written depend only on the
//! run (the one exception is `generated_at` in summary.json).

pub mod compare;
pub mod csv;
pub mod html;
pub mod json;
pub mod parquet;
pub mod postmortem;
mod rle;
pub mod svg;
pub mod terminal;

use crate::aggregate::events::Events;
use crate::aggregate::report::Report;
use crate::aggregate::run::Run;
use crate::scan::traffic::Traffic;
use parquet::write_counter_files;
use std::path::{Path, PathBuf};

pub use crate::model::meta::SCHEMA_VERSION;

/// Where a run's files go, and the options that shaped the run.
#[derive(Clone, Debug)]
pub struct RenderOptions {
    pub out_dir: PathBuf,
    pub run: crate::model::meta::RunOptions,
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

/// Write every report of a run into `dir`: the counters, then the rest (`write_report`).
pub fn write_run(run: &Run, report: &Report, dir: &Path) -> Result<(), RenderError> {
    write_counters(&run.traffic, dir)?;
    write_report(run, report, dir)
}

/// `counters/*.parquet`: they need only the scan's counters, so `analyze` writes them while
/// the scan's failures are correlated (a serial stage: the other core is free).
pub fn write_counters(traffic: &Traffic, dir: &Path) -> Result<(), RenderError> {
    let t = std::time::Instant::now();
    let cdir = dir.join("counters");
    std::fs::create_dir_all(&cdir).map_err(io_err(dir))?;
    write_counter_files(traffic, &cdir)?;
    crate::timings::timing("write counters", t);
    Ok(())
}

type Job<'a> = (String, Box<dyn Fn() -> Result<(), RenderError> + Send + Sync + 'a>);

/// The row files: they need only the events with their incidents (`report::Detected`).
fn row_jobs<'a>(ev: &'a Events, dir: &'a Path) -> Vec<Job<'a>> {
    // The longest first: `run_jobs` gives the first job a thread of its own and the others
    // to the rest.
    let mut jobs = vec![events_job(ev, dir)];
    jobs.extend(log_jobs(ev, dir));
    jobs
}

fn events_job<'a>(ev: &'a Events, dir: &'a Path) -> Job<'a> {
    ("events.parquet".into(), Box::new(move || parquet::write_events_parquet(ev, &dir.join("events.parquet"))))
}

/// `errors.csv` and `fpm.csv`: their rows carry no incident, so they need only the run's
/// events (not detection).
fn log_jobs<'a>(ev: &'a Events, dir: &'a Path) -> Vec<Job<'a>> {
    vec![
        // errors.csv: the held error rows merged with the quiet ones read back, row by row.
        ("errors.csv".into(), Box::new(move || csv::write_errors(ev, &dir.join("errors.csv")))),
        // fpm.csv: likewise, a batch at a time.
        ("fpm.csv".into(), Box::new(move || csv::write_fpm(ev, &dir.join("fpm.csv")))),
    ]
}

/// The other files: the tables, the summary, the page and the post-mortem.
fn table_jobs<'a>(run: &'a Run, report: &'a Report, dir: &'a Path) -> Vec<Job<'a>> {
    let mut jobs: Vec<Job> = Vec::new();
    for (name, df) in report.tables.files() {
        jobs.push((name.to_string(), Box::new(move || csv::write(&mut df.clone(), &dir.join(name)))));
    }
    jobs.push(("summary.json".into(), Box::new(|| json::write_summary(run, report, dir))));
    jobs.push(("report.html".into(), Box::new(|| html::write(run, report, dir))));
    jobs.push(("postmortem.md".into(), Box::new(|| postmortem::write(run, report, dir))));
    jobs
}

/// Run independent file jobs in parallel (on the caller's rayon pool); each file is
/// deterministic on its own.
fn run_jobs(jobs: Vec<Job>, dir: &Path) -> Result<(), RenderError> {
    use rayon::prelude::*;
    std::fs::create_dir_all(dir).map_err(io_err(dir))?;
    jobs.par_iter()
        .with_max_len(1)
        .map(|(name, j)| {
            let t = std::time::Instant::now();
            let r = j();
            crate::timings::timing(&format!("write {name}"), t);
            r
        })
        .collect::<Result<Vec<()>, RenderError>>()?;
    Ok(())
}

/// Every report file but the counters.
pub fn write_report(run: &Run, report: &Report, dir: &Path) -> Result<(), RenderError> {
    let mut jobs = row_jobs(&report.events, dir);
    jobs.extend(table_jobs(run, report, dir));
    run_jobs(jobs, dir)
}

/// `errors.csv` and `fpm.csv` (the run's events, before detection): `analyze` writes them
/// while incidents are detected (a serial stage) and after.
pub fn write_logs(ev: &Events, dir: &Path) -> Result<(), RenderError> {
    run_jobs(log_jobs(ev, dir), dir)
}

/// `events.parquet` (the events with their incidents): `analyze` writes it while the other
/// tables are built (it is most of the output), then the rest (`write_tables`).
pub fn write_events(ev: &Events, dir: &Path) -> Result<(), RenderError> {
    run_jobs(vec![events_job(ev, dir)], dir)
}

/// Every report file but the counters and the row files (`write_logs`, `write_events`).
pub fn write_tables(run: &Run, report: &Report, dir: &Path) -> Result<(), RenderError> {
    run_jobs(table_jobs(run, report, dir), dir)
}
